// Grace-period sources: batching, ordering, deferred-never-inline; and the real liburcu one
// against a real QSBR reader thread.

#include <atomic>
#include <gtest/gtest.h>
#include <poll.h>
#include <thread>
#include <vector>

#include "control/grace_period.hh"
#include "dataplane/rcu.hh"

namespace vcplane {
namespace {

TEST(manual_grace_periods, one_grace_period_serves_everything_deferred_before_the_flush) {
    manual_grace_periods gp;
    std::vector<int> ran;
    gp.defer([&] { ran.push_back(1); });
    gp.defer([&] { ran.push_back(2); });
    EXPECT_TRUE(ran.empty());        // never inline
    EXPECT_FALSE(gp.complete_one()); // not started before flush
    gp.flush();
    gp.defer([&] { ran.push_back(3); });
    gp.flush();
    EXPECT_EQ(gp.pending(), 3u);
    EXPECT_TRUE(gp.complete_one());
    EXPECT_EQ(ran, (std::vector<int>{1, 2}));
    gp.complete_all();
    EXPECT_EQ(ran, (std::vector<int>{1, 2, 3}));
    EXPECT_EQ(gp.grace_periods(), 2u);
    EXPECT_EQ(gp.pending(), 0u);
}

TEST(rcu_grace_periods, a_deferred_free_waits_for_the_reader_to_pass_a_quiescent_state) {
    rcu_register_thread();
    rcu_thread_offline();
    std::atomic<bool> reader_in{false}, release{false}, stop{false};
    std::thread reader([&] {
        rcu_register_thread();
        reader_in = true;
        // Holds a read-side "critical section" (no quiescent state) until released.
        while (!release.load()) {
            std::this_thread::yield();
        }
        while (!stop.load()) {
            rcu_quiescent_state();
            std::this_thread::yield();
        }
        rcu_unregister_thread();
    });
    while (!reader_in.load()) {
        std::this_thread::yield();
    }
    {
        rcu_grace_periods gp;
        int ran = 0;
        for (int i = 0; i < 100; ++i) {
            gp.defer([&] { ++ran; });
        }
        gp.flush();
        EXPECT_EQ(gp.pending(), 100u);
        pollfd p{gp.event_fd(), POLLIN, 0};
        EXPECT_EQ(poll(&p, 1, 100), 0); // the reader has not passed a quiescent state
        EXPECT_EQ(ran, 0);
        release = true;
        ASSERT_EQ(poll(&p, 1, 5000), 1);
        gp.run_completed();
        EXPECT_EQ(ran, 100); // all 100 in one grace period
        const auto latencies = gp.take_latencies();
        ASSERT_EQ(latencies.size(), 1u);
        // The reader held the grace period for the 100 ms poll above; the callbacks ran after.
        EXPECT_GE(latencies[0].synchronized, 0.09);
        EXPECT_GE(latencies[0].completed, latencies[0].synchronized);
        EXPECT_EQ(gp.pending(), 0u);
    }
    stop = true;
    reader.join();
    rcu_unregister_thread();
}

} // namespace
} // namespace vcplane
