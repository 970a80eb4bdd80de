// The rules on a party and a traffic contract that the file and the call managers share.

#include <gtest/gtest.h>

#include "vocab/call_vocabulary.hh"

namespace vcplane {
namespace {

TEST(traffic_contract, a_peak_or_burst_needs_a_sustained_rate) {
    EXPECT_EQ(check_contract({}), contract_problem::none);
    EXPECT_EQ(check_contract({0, 10, 0}), contract_problem::needs_sustained_rate);
    EXPECT_EQ(check_contract({0, 0, 64}), contract_problem::needs_sustained_rate);
    EXPECT_EQ(check_contract({10, 0, 64}), contract_problem::none);
}

TEST(traffic_contract, the_peak_is_at_least_the_sustained_rate) {
    EXPECT_EQ(check_contract({10, 9, 0}), contract_problem::peak_below_sustained);
    EXPECT_EQ(check_contract({10, 10, 0}), contract_problem::none);
    EXPECT_EQ(check_contract({10, 0, 0}), contract_problem::none); // 0: same as sustained
}

TEST(traffic_contract, the_default_burst_is_10_ms_and_at_least_two_frames) {
    EXPECT_EQ(default_burst(1'000'000'000, 1500), 10'000'000u);
    EXPECT_EQ(default_burst(1000, 1500), 2u * 1518);
    EXPECT_EQ(default_burst(1000, 9000), 2u * 9018);
}

TEST(admission, a_booking_fits_up_to_the_bandwidth_and_not_past_it) {
    EXPECT_EQ(booked_bps({125, 0, 0}), 1000u);
    EXPECT_TRUE(admits(8000, 4000, 4000));
    EXPECT_FALSE(admits(8000, 4000, 4001));
    EXPECT_FALSE(admits(8000, 0, 8001));
    EXPECT_TRUE(admits(0, UINT64_MAX - 1, 1)); // bandwidth not stated
    // No overflow past the bandwidth: a huge booking on a nearly full connection is refused.
    EXPECT_FALSE(admits(8000, 7999, UINT64_MAX));
}

TEST(party, a_next_hop_is_someone) {
    EXPECT_FALSE(usable_next_hop(mac_address{}));
    EXPECT_TRUE(usable_next_hop({2, 0, 0, 0, 0, 1}));
}

// The table of vocab/party_action.hh, cell by cell.
TEST(party_action, follows_from_the_ingress_the_egress_and_the_payload) {
    using enum party_action;
    using m = media_kind;
    const call_encapsulation ip{};
    const call_encapsulation eth{payload_kind::ethernet};
    struct cell {
        m in, out;
        uint32_t key;
        party_action with_ip, with_ethernet;
    };
    const cell cells[] = {
        {m::mpls, m::mpls, 100, swap, swap},     {m::mpls, m::vlan, 10, pop_tag, decap_tag},
        {m::mpls, m::port, 0, pop, decap},       {m::vlan, m::mpls, 100, push, encap},
        {m::vlan, m::vlan, 10, retag, retag},    {m::vlan, m::port, 0, untag, untag},
        {m::port, m::mpls, 100, push, encap},    {m::port, m::vlan, 10, tag, tag},
        {m::port, m::port, 0, forward, forward},
    };
    for (const cell& c : cells) {
        SCOPED_TRACE(std::string(media_name(c.in)) + " to " + media_name(c.out));
        EXPECT_EQ(derive_action(c.in, c.out, c.key, ip).action, c.with_ip);
        EXPECT_EQ(derive_action(c.in, c.out, c.key, ip).problem, action_problem::none);
        EXPECT_EQ(derive_action(c.in, c.out, c.key, eth).action, c.with_ethernet);
        EXPECT_EQ(derive_action(c.in, c.out, c.key, eth).problem, action_problem::none);
    }
    EXPECT_FALSE(is_edge_action(swap));
    EXPECT_FALSE(is_edge_action(retag));
    for (party_action a : {forward, push, encap, pop, pop_tag, decap, decap_tag, tag, untag}) {
        EXPECT_TRUE(is_edge_action(a)) << party_action_name(a);
    }
}

TEST(party_action, label_3_pops_where_there_is_a_label_and_ip_below_it) {
    const call_encapsulation ip{};
    const call_encapsulation eth{payload_kind::ethernet};
    EXPECT_EQ(derive_action(media_kind::mpls, media_kind::mpls, 3, ip).action, party_action::pop);
    EXPECT_EQ(derive_action(media_kind::mpls, media_kind::mpls, 3, eth).problem,
              action_problem::implicit_null_on_pseudowire);
    EXPECT_EQ(derive_action(media_kind::port, media_kind::mpls, 3, ip).problem,
              action_problem::implicit_null_needs_label);
    EXPECT_EQ(derive_action(media_kind::vlan, media_kind::mpls, 3, eth).problem,
              action_problem::implicit_null_needs_label);
}

TEST(party, a_control_word_is_for_a_pseudowire_alone) {
    EXPECT_EQ(check_encapsulation({payload_kind::ip, true}),
              action_problem::control_word_needs_ethernet);
    EXPECT_EQ(check_encapsulation({payload_kind::ethernet, true}), action_problem::none);
    EXPECT_EQ(check_encapsulation({payload_kind::ip, false}), action_problem::none);
    EXPECT_EQ(check_encapsulation({payload_kind::ethernet, false, ttl_model::pipe}),
              action_problem::none);
}

TEST(party, check_names_what_cannot_work) {
    const mac_address hop{2, 0, 0, 0, 0, 1};
    const call_encapsulation ip{};
    const call_encapsulation pw{payload_kind::ethernet, true};
    using m = media_kind;
    EXPECT_EQ(check_party_spec(m::mpls, m::mpls, 100, hop, ip).problem, party_problem::none);
    EXPECT_EQ(check_party_spec(m::mpls, m::mpls, 15, hop, ip).problem,
              party_problem::key_out_of_range);
    EXPECT_EQ(check_party_spec(m::mpls, m::mpls, 3, hop, ip).problem, party_problem::none);
    EXPECT_EQ(check_party_spec(m::mpls, m::vlan, 4095, hop, ip).problem,
              party_problem::key_out_of_range);
    EXPECT_EQ(check_party_spec(m::mpls, m::port, 5, hop, ip).problem, party_problem::key_on_port);
    EXPECT_EQ(check_party_spec(m::mpls, m::port, 0, {}, ip).problem, party_problem::no_next_hop);
    // A pseudowire's inner frame keeps its addresses: no next hop, and none accepted.
    EXPECT_EQ(check_party_spec(m::mpls, m::port, 0, {}, pw).problem, party_problem::none);
    EXPECT_EQ(check_party_spec(m::mpls, m::port, 0, hop, pw).problem,
              party_problem::next_hop_unused);
    EXPECT_EQ(check_party_spec(m::mpls, m::vlan, 10, {}, pw).derived.action,
              party_action::decap_tag);
    EXPECT_EQ(check_party_spec(m::port, m::mpls, 3, hop, ip).problem, party_problem::action);
    // Encapsulating into a pseudowire needs the next hop of the outer frame.
    EXPECT_EQ(check_party_spec(m::port, m::mpls, 100, {}, pw).problem, party_problem::no_next_hop);
}

} // namespace
} // namespace vcplane
