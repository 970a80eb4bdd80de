#pragma once
// The control thread's event loop: epoll over file descriptors, each with a handler that runs
// on the control thread. DPDK callbacks (interrupt thread) and RCU completions reach it
// through eventfds, never by acting on their own threads. post() queues work for the loop
// from the control thread itself (completions that must not run inside the call that caused
// them); it runs before the loop waits and again after the handlers. After every iteration the
// idle hook runs (grace-period flush, status snapshot).

#include <cstdint>
#include <deque>
#include <functional>
#include <map>

namespace vcplane {

class event_loop {
public:
    using handler = std::function<void(uint32_t events)>;

    event_loop();
    ~event_loop();
    event_loop(const event_loop&) = delete;
    event_loop& operator=(const event_loop&) = delete;

    void watch(int fd, handler h, uint32_t events = 0x001 /* EPOLLIN */);
    void modify(int fd, uint32_t events); // e.g. add EPOLLOUT while output is queued
    void unwatch(int fd);
    void post(std::function<void()> fn) { posted_.push_back(std::move(fn)); }
    void set_idle_hook(std::function<void()> fn) { idle_ = std::move(fn); }

    void run();                         // until stop()
    void run_once(int timeout_ms = -1); // posted work, events, posted work, idle hook
    void stop() noexcept { running_ = false; }

private:
    void run_posted();

    int epoll_fd_;
    bool running_ = false;
    std::map<int, handler> handlers_;
    std::deque<std::function<void()>> posted_;
    std::function<void()> idle_;
};

} // namespace vcplane
