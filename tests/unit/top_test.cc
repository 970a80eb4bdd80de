// vcplanectl top's arithmetic (client/top.hh) held to known counters.
#include "client/top.hh"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdexcept>

namespace vcplane::test {
namespace {

using nlohmann::json;
using testing::HasSubstr;

constexpr uint64_t hz = 2'000'000'000;

json grace(uint64_t count, std::vector<uint64_t> le) {
    std::vector<double> bounds = {1e-6, 1e-5, 1e-4, 1e-3};
    return {{"count", count}, {"sum_seconds", 0.0}, {"bounds_seconds", bounds}, {"le", le}};
}

// One stats reply: worker 0, connections in and out, the call feed, grace periods.
json reading(uint64_t tsc, uint64_t busy, uint64_t idle, uint64_t frames, uint64_t copies,
             uint64_t in_bytes, uint64_t out_bytes, uint64_t ttl_drops, uint64_t missed,
             json grace_periods) {
    return {{"code", 0},
            {"tsc", tsc},
            {"tsc_hz", hz},
            {"workers",
             {{{"worker", 0},
               {"busy_cycles", busy},
               {"idle_cycles", idle},
               {"rx_packets", frames},
               {"tx_packets", copies}}}},
            {"connections",
             {{{"connection", "in"},
               {"device", "net_null0"},
               {"link_up", true},
               {"rx_packets", frames},
               {"rx_bytes", in_bytes},
               {"tx_packets", 0},
               {"tx_bytes", 0},
               {"rx_missed", missed},
               {"rx_errors", 0},
               {"tx_errors", 0},
               {"rx_nombuf", 0}},
              {{"connection", "out"},
               {"device", "net_null1"},
               {"link_up", false},
               {"rx_packets", 0},
               {"rx_bytes", 0},
               {"tx_packets", copies},
               {"tx_bytes", out_bytes},
               {"rx_missed", 0},
               {"rx_errors", 0},
               {"tx_errors", 0},
               {"rx_nombuf", 0}}}},
            {"drops", {{"ttl_expired", ttl_drops}, {"unknown_key", 0}}},
            {"per_vc", true},
            {"calls",
             {{"in", "feed", 1000, frames, in_bytes, ttl_drops}, {"in", "idle", 1001, 5, 320, 0}}},
            {"grace_periods", std::move(grace_periods)}};
}

TEST(top, rates_are_the_difference_of_two_readings_over_their_cycles) {
    // Half a second apart: 500 000 frames in, 3 copies each, 64 bytes a frame.
    const json a =
        reading(10 * hz, 1000, 9000, 100, 300, 6400, 19200, 7, 2, grace(10, {0, 5, 10, 10}));
    const json b =
        reading(10 * hz + hz / 2, 1000 + 250'000'000, 9000 + 750'000'000, 500'100, 1'500'300,
                6400 + 32'000'000, 19200 + 96'000'000, 7 + 50, 2 + 10, grace(110, {0, 5, 60, 110}));
    const top_view v = make_top_view(a, b);
    EXPECT_DOUBLE_EQ(v.seconds, 0.5);
    ASSERT_EQ(v.workers.size(), 1u);
    EXPECT_DOUBLE_EQ(v.workers[0].busy_percent, 25);
    EXPECT_DOUBLE_EQ(v.workers[0].frames_per_s, 1'000'000);
    EXPECT_DOUBLE_EQ(v.workers[0].copies_per_s, 3'000'000);
    EXPECT_DOUBLE_EQ(v.workers[0].cycles_per_frame, 500);
    ASSERT_EQ(v.connections.size(), 2u);
    EXPECT_DOUBLE_EQ(v.connections[0].rx_frames_per_s, 1'000'000);
    EXPECT_DOUBLE_EQ(v.connections[0].rx_bits_per_s, 512'000'000);
    EXPECT_DOUBLE_EQ(v.connections[0].errors_per_s, 20);
    EXPECT_DOUBLE_EQ(v.connections[1].tx_frames_per_s, 3'000'000);
    EXPECT_DOUBLE_EQ(v.connections[1].tx_bits_per_s, 1'536'000'000);
    EXPECT_FALSE(v.connections[1].link_up);
    ASSERT_EQ(v.drops_per_s.size(), 2u);
    EXPECT_EQ(v.drops_per_s[0].first, "ttl_expired");
    EXPECT_DOUBLE_EQ(v.drops_per_s[0].second, 100);
    // The busy call first; one that moved nothing after it.
    ASSERT_EQ(v.busiest_calls.size(), 2u);
    EXPECT_EQ(v.busiest_calls[0].call, "feed");
    EXPECT_DOUBLE_EQ(v.busiest_calls[0].frames_per_s, 1'000'000);
    EXPECT_DOUBLE_EQ(v.busiest_calls[0].drops_per_s, 100);
    EXPECT_EQ(v.busiest_calls[1].call, "idle");
    EXPECT_DOUBLE_EQ(v.busiest_calls[1].frames_per_s, 0);
    // 100 grace periods in the interval: 50 in (1e-5, 1e-4], 50 in (1e-4, 1e-3].
    EXPECT_DOUBLE_EQ(v.grace_periods_per_s, 200);
    EXPECT_DOUBLE_EQ(v.grace_p50_seconds, 1e-4);
    EXPECT_NEAR(v.grace_p99_seconds, 1e-4 + 0.98 * 9e-4, 1e-12);

    const std::string screen = render_top(v, "9.9");
    EXPECT_THAT(screen, HasSubstr("vcplane 9.9"));
    EXPECT_THAT(screen, HasSubstr("ttl_expired 100"));
    EXPECT_THAT(screen, HasSubstr("1.00 M"));
    const json j = top_json(v);
    EXPECT_DOUBLE_EQ(j["connections"][0]["rx_frames_per_s"].get<double>(), 1'000'000);
    EXPECT_DOUBLE_EQ(j["grace_periods"]["p50_seconds"].get<double>(), 1e-4);
}

TEST(top, a_connection_that_came_back_counts_from_zero_and_a_new_one_shows_nothing_yet) {
    const json a = reading(hz, 0, 0, 1000, 0, 64000, 0, 0, 0, grace(0, {0, 0, 0, 0}));
    json b = reading(2 * hz, 0, 0, 10, 0, 640, 0, 0, 0, grace(0, {0, 0, 0, 0}));
    b["connections"].push_back(b["connections"][0]);
    b["connections"][2]["connection"] = "new";
    const top_view v = make_top_view(a, b);
    EXPECT_DOUBLE_EQ(v.connections[0].rx_frames_per_s, 10);
    EXPECT_DOUBLE_EQ(v.connections[2].rx_frames_per_s, 0);
    EXPECT_DOUBLE_EQ(v.grace_p99_seconds, 0);
    EXPECT_THAT(render_top(v, "x"), HasSubstr("p50 -  p99 -"));
}

TEST(top, a_reading_that_is_not_later_or_not_a_stats_reply_is_refused) {
    const json a = reading(hz, 0, 0, 0, 0, 0, 0, 0, 0, grace(0, {0, 0, 0, 0}));
    EXPECT_THROW(make_top_view(a, a), std::invalid_argument);
    json b = reading(2 * hz, 0, 0, 0, 0, 0, 0, 0, 0, grace(0, {0, 0, 0}));
    EXPECT_THROW(make_top_view(a, b), std::invalid_argument);
    b = reading(2 * hz, 0, 0, 0, 0, 0, 0, 0, 0, grace(0, {0, 0, 0, 0}));
    b["workers"][0]["busy_cycles"] = "many";
    EXPECT_THROW(make_top_view(a, b), std::invalid_argument);
}

TEST(top, quantiles_interpolate_within_their_bucket) {
    const std::vector<double> bounds = {1, 2, 4};
    EXPECT_DOUBLE_EQ(histogram_quantile(0.5, bounds, {0, 0, 0}, 0), 0);
    EXPECT_DOUBLE_EQ(histogram_quantile(0.5, bounds, {10, 10, 10}, 10), 0.5);
    EXPECT_DOUBLE_EQ(histogram_quantile(0.75, bounds, {0, 4, 8}, 8), 3);
    EXPECT_DOUBLE_EQ(histogram_quantile(0.99, bounds, {0, 0, 1}, 10), 4); // past the last bound
}

} // namespace
} // namespace vcplane::test
