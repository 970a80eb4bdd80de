#pragma once
// Grace periods for the control thread (the rules: dataplane/rcu.hh).
//
// The control thread unpublishes an object, then defer()s what must wait until no worker can
// still hold it: freeing it, and the `...Complete` call of the contract operation that
// returned PENDING. Everything deferred between two flush()es shares ONE grace period; the
// control loop calls flush() once per iteration. Deferred functions always run later on the
// control thread, never inside defer() or flush(), so a PENDING operation completes exactly
// once and never before its caller has seen PENDING.
//
// Two sources: rcu_grace_periods (a helper thread runs liburcu QSBR's synchronize_rcu per batch;
// completions come back through an eventfd the control loop watches) and manual_grace_periods
// (tests advance time by hand).

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace vcplane {

class grace_period_source {
public:
    using callback = std::function<void()>;
    virtual ~grace_period_source() = default;

    virtual void defer(callback fn) = 0;
    // Starts one grace period for everything deferred since the last flush.
    virtual void flush() = 0;
    // Deferred functions whose grace period has not completed (or not started).
    virtual size_t pending() const = 0;
    // Blocks until a full grace period has passed. Only for contracts that are synchronous by
    // definition (CSP Disconnect) and for shutdown; never per operation.
    virtual void synchronize() = 0;
};

// liburcu QSBR, waited for by a helper thread of its own: flush() hands the batch over, the
// helper calls synchronize_rcu() once for every batch that is waiting (batches queue up while a
// grace period runs, and the next synchronize_rcu serves them all), and completions come back
// through an eventfd the control loop watches. (liburcu's call_rcu thread would do the same but
// sleeps 10 ms between batches; a grace period here takes microseconds when workers are busy.)
// The owning (control) thread needs no RCU registration; if it is registered it must stay
// offline, so that it never holds up a grace period.
class rcu_grace_periods final : public grace_period_source {
public:
    rcu_grace_periods();
    ~rcu_grace_periods() override; // waits for batches in flight and runs what is due

    void defer(callback fn) override;
    void flush() override;
    size_t pending() const override { return pending_; }
    void synchronize() override;

    int event_fd() const noexcept { return event_fd_; }
    // Whether the helper runs SCHED_FIFO (it needs CAP_SYS_NICE): if not, a grace period can
    // wait for the control thread's scheduler slice.
    bool realtime_helper() const noexcept { return realtime_helper_; }
    // Runs the callbacks of every completed grace period. Call when event_fd() is readable.
    void run_completed();
    // How long a batch took, in seconds from its flush(): until the helper's synchronize_rcu()
    // returned (the grace period itself, with the helper's wake-up), and until run_completed()
    // ran its callbacks (what a waiting drop sees; the difference is the wait for the control
    // thread's loop to come round).
    struct latency {
        double synchronized;
        double completed;
    };
    // Those of the batches completed since the last call, for metrics and benchmarks.
    std::vector<latency> take_latencies();

private:
    struct batch {
        std::vector<callback> fns;
        std::chrono::steady_clock::time_point started;
        std::chrono::steady_clock::time_point synchronized;
    };
    void helper_main();

    int event_fd_;
    // Control thread only: the batch being filled, and emptied vectors kept for reuse (so that
    // a batch does not grow its callback vector from nothing, nor run_completed its list).
    static constexpr size_t spare_vectors = 4;
    std::vector<callback> open_;
    std::vector<std::vector<callback>> spare_;
    std::vector<batch> ready_;
    size_t pending_ = 0; // deferred functions not yet run (control thread only)
    std::mutex lock_;    // shared with the helper thread; never taken by workers
    std::condition_variable wake_;
    std::vector<batch> submitted_; // the helper swaps it with one of its own: no allocation
    std::vector<batch> done_;
    bool stopping_ = false;
    std::vector<latency> latencies_;
    std::thread helper_;
    bool realtime_helper_ = false;
};

// For unit tests: grace periods end when the test says so.
class manual_grace_periods final : public grace_period_source {
public:
    void defer(callback fn) override { open_.push_back(std::move(fn)); }
    void flush() override;
    size_t pending() const override;
    void synchronize() override {
        flush();
        complete_all();
    }

    // Ends the oldest started grace period and runs its callbacks. False if none was started.
    bool complete_one();
    void complete_all();
    size_t started() const noexcept { return started_.size(); }
    uint64_t grace_periods() const noexcept { return count_; }

private:
    std::vector<callback> open_;
    std::deque<std::vector<callback>> started_;
    uint64_t count_ = 0;
};

} // namespace vcplane
