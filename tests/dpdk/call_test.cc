// Calls changing under a running worker, through the real control plane and real grace
// periods (issue 4): parties added to and dropped from a multipoint call that carries
// sequence-numbered traffic, other calls closed meanwhile; every remaining party gets every
// frame exactly once, a dropped party nothing after its completion, close data arrives as a
// well-formed G-ACh frame, and every per-VC and per-party object is freed at the end. Also the
// traffic-contract meter and admission control on a live worker.

#include <atomic>
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <map>
#include <rte_launch.h>

#include "control/control_plane.hh"
#include "dataplane/wire.hh"
#include "support/call_client.hh"
#include "support/control_loop.hh"
#include "tests/dpdk/harness.hh"
#include "tests/dpdk/live_plane.hh"

namespace vcplane::test {
namespace {

// Ports in, p1..p4 and no calls: the test makes them through its client.
class live_calls : public live_plane {
protected:
    std::string calls_text() const override { return ""; }
};

TEST_F(live_calls, parties_come_and_go_while_traffic_flows_and_nobody_else_loses_a_frame) {
    auto& c = *client_;
    callmgmt::vc_handle m = 0, other = 0;
    callmgmt::party_handle p1 = 0, p2 = 0, p3 = 0, p4 = 0, o = 0;
    ASSERT_EQ(c.make("in", 0, call("main", 1000), party("one", "p1", 2001, 1), &m, &p1),
              callmgmt::status::success);
    ASSERT_EQ(c.add("in", m, party("two", "p2", 2002, 2), &p2), callmgmt::status::success);
    ASSERT_EQ(c.add("in", m, party("three", "p3", 2003, 3), &p3), callmgmt::status::success);
    ASSERT_EQ(c.make("in", 0, call("other", 1001, false), party("x", "p4", 3001, 4), &other, &o),
              callmgmt::status::success);

    send(1000, 0, 1000);
    send(1001, 0, 100);
    ASSERT_EQ(c.add("in", m, party("four", "p4", 2004, 4), &p4), callmgmt::status::success);
    send(1000, 1000, 2000);
    const std::vector<uint8_t> bye = {'b', 'y', 'e', ' ', 't', 'w', 'o'};
    ASSERT_EQ(c.drop("in", p2, bye), callmgmt::status::pending);
    send(1000, 2000, 2500);
    ASSERT_TRUE(c.wait_for(p2));
    EXPECT_THAT(c.events[p2], ::testing::ElementsAre("drop_complete:SUCCESS"));
    const size_t p2_at_completion = got_["p2"].size();
    ASSERT_EQ(c.close("in", other, 0, {'e', 'n', 'd'}), callmgmt::status::pending);
    send(1000, 2500, 4000);
    ASSERT_TRUE(c.wait_for(other));
    send(1001, 100, 200); // the closed call's label is unknown now

    // Unaffected parties: every frame, exactly once, in order.
    EXPECT_EQ(seqs(got_["p1"], 2001), range(0, 4000));
    EXPECT_EQ(seqs(got_["p3"], 2003), range(0, 4000));
    // The added party: every frame from the moment it joined, none before.
    EXPECT_EQ(seqs(got_["p4"], 2004), range(1000, 4000));
    // The dropped party: a prefix without gaps, then nothing after its completion but the
    // close data, which is its last frame.
    const auto two = seqs(got_["p2"], 2002);
    ASSERT_GE(two.size(), 2000u);
    EXPECT_EQ(two, range(0, uint32_t(two.size())));
    EXPECT_EQ(got_["p2"].size(), p2_at_completion);
    const auto& close_frame = got_["p2"].back();
    std::vector<uint8_t> want(wire::ether_header_len + wire::gach_overhead + bye.size());
    const mac_address nh{2, 0, 0, 0, 1, 2};
    wire::write_gach_frame(want.data(), nh.data(), port("p2").mac.data(), 2002, bye.data(),
                           bye.size());
    EXPECT_EQ(close_frame, want);
    // The closed point-to-point call: its frames until the close, then its close data after
    // the last of them (p4 carries the main call too; only this call's order is defined).
    EXPECT_EQ(seqs(got_["p4"], 3001), range(0, 100));
    long last_data = -1, close_at = -1;
    for (size_t i = 0; i < got_["p4"].size(); ++i) {
        const wire::mpls_entry top{wire::load_be32(got_["p4"][i].data() + 14)};
        if (top.label() == 3001 && top.bottom()) {
            last_data = long(i);
        } else if (top.label() == 3001) {
            EXPECT_EQ(close_at, -1) << "a second close frame";
            close_at = long(i);
        }
    }
    ASSERT_GE(close_at, 0);
    EXPECT_GT(close_at, last_data);
    const auto& end = got_["p4"][size_t(close_at)];
    EXPECT_EQ(wire::mpls_entry{wire::load_be32(end.data() + 18)}.label(), wire::gal_label);
    EXPECT_TRUE(wire::mpls_entry{wire::load_be32(end.data() + 18)}.bottom());
    EXPECT_EQ(wire::load_be16(end.data() + 24), wire::ach_channel_close_data);
    EXPECT_EQ(std::string(end.begin() + 26, end.end()), "end");

    // Tear the rest down through the contract: drop to the last party, close, all freed.
    ASSERT_EQ(c.drop("in", p4), callmgmt::status::pending);
    ASSERT_EQ(c.drop("in", p3), callmgmt::status::pending);
    EXPECT_EQ(c.drop("in", p1), callmgmt::status::failure); // the last party
    ASSERT_EQ(c.close("in", m, p1), callmgmt::status::pending);
    ASSERT_TRUE(c.wait_for(m));
    EXPECT_EQ(plane_->find_call_manager("in")->vc_count(), 0u);
    EXPECT_EQ(party_set::live(), parties_before_);
    EXPECT_EQ(switch_state::live_vcs(), vcs_before_);
}

TEST_F(live_calls, a_traffic_contract_polices_the_excess_and_admission_refuses_overbooking) {
    auto& c = *client_;
    callmgmt::vc_handle v = 0, w = 0;
    callmgmt::party_handle a = 0, b = 0;
    // 64-byte frames at 100 kB/s with a burst of ten frames: a sudden 1000 mostly go red.
    ASSERT_EQ(c.make("in", 0, call("metered", 1000, true, {100'000, 100'000, 640}),
                     party("a", "p4", 2001, 4), &v, &a),
              callmgmt::status::success);
    send(1000, 0, 1000);
    const size_t passed = seqs(got_["p4"], 2001).size();
    EXPECT_GE(passed, 5u);
    EXPECT_LE(passed, 40u);
    const vc* circuit = plane_->state().find_connection("in")->entry->keys.lookup(1000);
    ASSERT_NE(circuit, nullptr);
    EXPECT_EQ(circuit->meter->per_worker[0].policed.read(), 1000 - passed);
    EXPECT_EQ(plane_->workers()[0]->counters().drops[size_t(drop_reason::policed)].read(),
              1000 - passed);

    // p4 has 1 Mbit/s; 'metered' booked 800 kbit/s of it.
    ASSERT_EQ(c.make("in", 0, call("second", 1001, true, {50'000, 0, 0}), party("b", "p4", 2002, 4),
                     &w, &b),
              callmgmt::status::resources);
    EXPECT_THAT(c.error("in"), ::testing::HasSubstr("'p4' would be overbooked"));
    ASSERT_EQ(c.close("in", v, a), callmgmt::status::pending); // releases the booking
    ASSERT_EQ(c.make("in", 0, call("second", 1001, true, {50'000, 0, 0}), party("b", "p4", 2002, 4),
                     &w, &b),
              callmgmt::status::success);
}

// The file and the call managers apply one admission rule: bookings that fill p4's 1 Mbit/s
// exactly pass --check and are made at run time; one byte per second more is refused by both.
TEST_F(live_calls, the_file_and_the_call_manager_refuse_the_same_booking) {
    const auto calls_with = [](uint64_t second_rate) {
        return fmt::format(R"(
[calls.a]
connection = "in"
label = 1000
sustained_rate = 100000
[[calls.a.parties]]
connection = "p4"
label = 2001
next_hop = "02:00:00:00:01:04"
[calls.b]
connection = "in"
label = 1001
sustained_rate = {}
[[calls.b.parties]]
connection = "p4"
label = 2002
next_hop = "02:00:00:00:01:04"
)",
                           second_rate);
    };
    EXPECT_NO_THROW(parse_config_string(file_text(calls_with(25'000)), "full.toml"));
    EXPECT_THROW(parse_config_string(file_text(calls_with(25'001)), "over.toml"), config_error);

    auto& c = *client_;
    callmgmt::vc_handle v = 0, w = 0;
    callmgmt::party_handle a = 0, b = 0;
    ASSERT_EQ(
        c.make("in", 0, call("a", 1000, true, {100'000, 0, 0}), party("a", "p4", 2001, 4), &v, &a),
        callmgmt::status::success);
    EXPECT_EQ(
        c.make("in", 0, call("b", 1001, true, {25'001, 0, 0}), party("b", "p4", 2002, 4), &w, &b),
        callmgmt::status::resources);
    ASSERT_EQ(
        c.make("in", 0, call("b", 1001, true, {25'000, 0, 0}), party("b", "p4", 2002, 4), &w, &b),
        callmgmt::status::success);
    ASSERT_EQ(c.close("in", w, b), callmgmt::status::pending);
    ASSERT_EQ(c.close("in", v, a), callmgmt::status::pending);
    ASSERT_TRUE(c.wait_for(v));
    ASSERT_TRUE(c.wait_for(w));
}

} // namespace
} // namespace vcplane::test
