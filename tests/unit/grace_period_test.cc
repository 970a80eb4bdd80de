// Grace-period sources: batching, ordering, deferred-never-inline; and the real liburcu one
// against a real QSBR reader thread.

#include <atomic>
#include <gtest/gtest.h>
#include <poll.h>
#include <string>
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

// No reader is registered here, so every grace period ends at once: what is tested is the
// batches' bookkeeping, whose vectors are reused from one batch to the next.
bool wait_for_completion(const rcu_grace_periods& gp) {
    pollfd p{gp.event_fd(), POLLIN, 0};
    return poll(&p, 1, 5000) == 1;
}

TEST(rcu_grace_periods, batch_after_batch_every_callback_runs_once_and_in_order) {
    rcu_grace_periods gp;
    std::vector<int> ran, expected;
    int next = 0;
    for (int round = 0; round < 60; ++round) {
        const int n = 1 + round * 7 % 40; // growing and shrinking batches
        for (int i = 0; i < n; ++i) {
            expected.push_back(next);
            gp.defer([&ran, v = next++] { ran.push_back(v); });
        }
        gp.flush();
        ASSERT_TRUE(wait_for_completion(gp));
        gp.run_completed();
        ASSERT_EQ(ran, expected) << "round " << round;
    }
    EXPECT_EQ(gp.pending(), 0u);
}

TEST(rcu_grace_periods, a_callback_that_runs_the_loop_again_loses_nothing) {
    // As a completion that pumps the control loop does: it defers more and runs what completed
    // from inside run_completed; the rest of its own batch still runs after it, once each.
    rcu_grace_periods gp;
    std::vector<std::string> ran;
    gp.defer([&] {
        ran.push_back("a");
        gp.defer([&] { ran.push_back("d"); }); // never into the batch being run
        gp.flush();
        ASSERT_TRUE(wait_for_completion(gp));
        gp.run_completed();
    });
    gp.defer([&] { ran.push_back("b"); });
    gp.defer([&] { ran.push_back("c"); });
    gp.flush();
    ASSERT_TRUE(wait_for_completion(gp));
    gp.run_completed();
    EXPECT_EQ(ran, (std::vector<std::string>{"a", "d", "b", "c"}));
    EXPECT_EQ(gp.pending(), 0u);
    // And the vectors left behind serve the next batch.
    gp.defer([&] { ran.push_back("e"); });
    gp.flush();
    ASSERT_TRUE(wait_for_completion(gp));
    gp.run_completed();
    EXPECT_EQ(ran.back(), "e");
    EXPECT_EQ(gp.take_latencies().size(), 3u);
}

} // namespace
} // namespace vcplane
