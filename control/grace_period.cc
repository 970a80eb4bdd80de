#include "control/grace_period.hh"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <pthread.h>
#include <sched.h>
#include <stdexcept>
#include <string>
#include <sys/eventfd.h>
#include <unistd.h>

#include "dataplane/rcu.hh"

namespace vcplane {

rcu_grace_periods::rcu_grace_periods()
    : event_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (event_fd_ < 0) {
        throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
    }
    helper_ = std::thread([this] { helper_main(); });
    // The helper shares the control thread's CPU (it inherits its affinity) and sleeps most of
    // the time; at the normal priority a wake-up waits behind the busy control thread for its
    // scheduler slice, milliseconds. SCHED_FIFO runs it the moment it wakes, for the few
    // microseconds it then needs (liburcu's wait for readers sleeps on a futex rather than
    // spin long, so it cannot starve the CPU). Without CAP_SYS_NICE it stays as it is.
    const sched_param realtime{.sched_priority = 1};
    realtime_helper_ = pthread_setschedparam(helper_.native_handle(), SCHED_FIFO, &realtime) == 0;
}

rcu_grace_periods::~rcu_grace_periods() {
    flush();
    {
        std::lock_guard<std::mutex> g(lock_);
        stopping_ = true; // the helper finishes every submitted batch first
    }
    wake_.notify_one();
    helper_.join();
    run_completed();
    close(event_fd_);
}

void rcu_grace_periods::defer(callback fn) {
    open_.push_back(std::move(fn));
    ++pending_;
}

void rcu_grace_periods::flush() {
    if (open_.empty()) {
        return;
    }
    {
        std::lock_guard<std::mutex> g(lock_);
        submitted_.push_back(batch{std::move(open_), std::chrono::steady_clock::now()});
    }
    open_.clear(); // moved from: empty, and in a valid state
    if (!spare_.empty()) {
        open_.swap(spare_.back());
        spare_.pop_back();
    }
    wake_.notify_one();
}

// The helper: one synchronize_rcu() for everything submitted before it started.
void rcu_grace_periods::helper_main() {
    std::unique_lock<std::mutex> g(lock_);
    std::vector<batch> taken;
    for (;;) {
        wake_.wait(g, [this] { return stopping_ || !submitted_.empty(); });
        if (submitted_.empty()) {
            return; // stopping, and nothing left
        }
        taken.swap(submitted_); // submitted_ gets the (empty) vector taken last time
        g.unlock();
        synchronize_rcu();
        const auto synchronized = std::chrono::steady_clock::now();
        g.lock();
        for (auto& b : taken) {
            b.synchronized = synchronized;
            done_.push_back(std::move(b));
        }
        taken.clear();
        const uint64_t one = 1;
        [[maybe_unused]] ssize_t rc = write(event_fd_, &one, sizeof(one));
    }
}

void rcu_grace_periods::run_completed() {
    uint64_t count;
    [[maybe_unused]] ssize_t rc = read(event_fd_, &count, sizeof(count));
    // A local, not a member, because a callback may run the control loop (and so this) again;
    // it starts from the capacity the last call left in ready_.
    std::vector<batch> ready = std::move(ready_);
    ready_.clear();
    {
        std::lock_guard<std::mutex> g(lock_);
        ready.swap(done_);
    }
    const auto now = std::chrono::steady_clock::now();
    for (auto& b : ready) {
        using seconds = std::chrono::duration<double>;
        latencies_.push_back(
            {seconds(b.synchronized - b.started).count(), seconds(now - b.started).count()});
        // A callback may defer() more (into open_, never into this batch).
        for (auto& fn : b.fns) {
            --pending_;
            fn();
        }
        b.fns.clear();
        if (spare_.size() < spare_vectors) {
            spare_.push_back(std::move(b.fns));
        }
    }
    ready.clear();
    if (ready_.capacity() == 0) {
        ready_ = std::move(ready);
    }
}

std::vector<rcu_grace_periods::latency> rcu_grace_periods::take_latencies() {
    std::vector<latency> out;
    out.swap(latencies_);
    return out;
}

void rcu_grace_periods::synchronize() {
    synchronize_rcu();
}

void manual_grace_periods::flush() {
    if (!open_.empty()) {
        started_.push_back(std::move(open_));
        open_.clear();
    }
}

size_t manual_grace_periods::pending() const {
    size_t n = open_.size();
    for (const auto& b : started_) {
        n += b.size();
    }
    return n;
}

bool manual_grace_periods::complete_one() {
    if (started_.empty()) {
        return false;
    }
    auto fns = std::move(started_.front());
    started_.pop_front();
    ++count_;
    for (auto& fn : fns) {
        fn();
    }
    return true;
}

void manual_grace_periods::complete_all() {
    while (complete_one()) {
    }
}

} // namespace vcplane
