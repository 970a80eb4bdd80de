// The rules on a party and a traffic contract that the file and the call managers share.

#include <gtest/gtest.h>

#include "config/call_vocabulary.hh"

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

TEST(party, its_egress_carries_the_calls_media_and_a_next_hop_is_someone) {
    EXPECT_TRUE(party_media_fits(media_kind::mpls, media_kind::mpls));
    EXPECT_TRUE(party_media_fits(media_kind::vlan, media_kind::vlan));
    EXPECT_FALSE(party_media_fits(media_kind::mpls, media_kind::vlan));
    EXPECT_FALSE(party_media_fits(media_kind::vlan, media_kind::mpls));
    EXPECT_FALSE(usable_next_hop(mac_address{}));
    EXPECT_TRUE(usable_next_hop({2, 0, 0, 0, 0, 1}));
}

} // namespace
} // namespace vcplane
