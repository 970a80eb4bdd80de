#pragma once
// The control thread's event loop: epoll over file descriptors, each with a handler that runs
// on the control thread. DPDK callbacks (interrupt thread) and RCU completions reach it
// through eventfds, never by acting on their own threads.

#include <cstdint>
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

    void watch(int fd, handler h); // EPOLLIN
    void unwatch(int fd);
    void run(); // until stop()
    void stop() noexcept { running_ = false; }

private:
    int epoll_fd_;
    bool running_ = false;
    std::map<int, handler> handlers_;
};

} // namespace vcplane
