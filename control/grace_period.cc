#include "control/grace_period.hh"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string>
#include <sys/eventfd.h>
#include <unistd.h>

#include "dataplane/rcu.hh"

namespace vcplane {

// One grace period's worth of deferred work. The rcu_head is reached through a small
// standard-layout node so that container_of stays well defined.
struct rcu_grace_periods::batch {
    struct node_type {
        rcu_head head;
        batch* self;
    } node;
    rcu_grace_periods* owner;
    std::vector<callback> fns;
    std::chrono::steady_clock::time_point started;
};

rcu_grace_periods::rcu_grace_periods()
    : event_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (event_fd_ < 0) {
        throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
    }
}

rcu_grace_periods::~rcu_grace_periods() {
    flush();
    if (in_flight_ != 0) {
        rcu_thread_online();
        rcu_barrier(); // every queued call_rcu callback has run
        rcu_thread_offline();
    }
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
    auto* b = new batch{{{}, nullptr}, this, std::move(open_), std::chrono::steady_clock::now()};
    b->node.self = b;
    open_.clear();
    ++in_flight_;
    // call_rcu wants an online QSBR thread; online for this call only.
    rcu_thread_online();
    call_rcu(&b->node.head, &rcu_grace_periods::on_grace_period);
    rcu_thread_offline();
}

// Runs on liburcu's call_rcu thread: hand the batch back to the control thread, do nothing else.
void rcu_grace_periods::on_grace_period(::rcu_head* head) {
    auto* n = reinterpret_cast<batch::node_type*>(head);
    batch* b = n->self;
    {
        std::lock_guard<std::mutex> g(b->owner->done_lock_);
        b->owner->done_.push_back(b);
    }
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t rc = write(b->owner->event_fd_, &one, sizeof(one));
}

void rcu_grace_periods::run_completed() {
    uint64_t count;
    [[maybe_unused]] ssize_t rc = read(event_fd_, &count, sizeof(count));
    std::vector<batch*> ready;
    {
        std::lock_guard<std::mutex> g(done_lock_);
        ready.swap(done_);
    }
    const auto now = std::chrono::steady_clock::now();
    for (batch* b : ready) {
        --in_flight_;
        latencies_.push_back(std::chrono::duration<double>(now - b->started).count());
        for (auto& fn : b->fns) {
            --pending_;
            fn();
        }
        delete b;
    }
}

std::vector<double> rcu_grace_periods::take_latencies() {
    std::vector<double> out;
    out.swap(latencies_);
    return out;
}

size_t rcu_grace_periods::pending() const {
    return pending_;
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
