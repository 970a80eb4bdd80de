#include "base/event_loop.hh"

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>
#include <sys/epoll.h>
#include <unistd.h>

namespace vcplane {

event_loop::event_loop()
    : epoll_fd_(epoll_create1(EPOLL_CLOEXEC)) {
    if (epoll_fd_ < 0) {
        throw std::runtime_error(std::string("epoll_create1: ") + std::strerror(errno));
    }
}

event_loop::~event_loop() {
    close(epoll_fd_);
}

void event_loop::watch(int fd, handler h, uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    // The handler's place first: if it cannot be made, epoll has not been told of fd.
    auto [it, inserted] = handlers_.emplace(fd, handler{});
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
        const int err = errno;
        if (inserted) {
            handlers_.erase(it);
        }
        throw std::runtime_error(std::string("epoll_ctl: ") + std::strerror(err));
    }
    it->second = std::move(h);
}

void event_loop::modify(int fd, uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev);
}

void event_loop::unwatch(int fd) {
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    handlers_.erase(fd);
}

void event_loop::run_posted() {
    while (!posted_.empty()) {
        auto fn = std::move(posted_.front());
        posted_.pop_front();
        fn();
    }
}

void event_loop::run_once(int timeout_ms) {
    run_posted();
    epoll_event events[16];
    const int n = epoll_wait(epoll_fd_, events, 16, posted_.empty() ? timeout_ms : 0);
    if (n < 0 && errno != EINTR) {
        throw std::runtime_error(std::string("epoll_wait: ") + std::strerror(errno));
    }
    for (int i = 0; i < n; ++i) {
        auto it = handlers_.find(events[i].data.fd);
        if (it != handlers_.end()) {
            handler h = it->second; // copy: the handler may unwatch its own fd
            h(events[i].events);
        }
    }
    // What the handlers posted (replies to flush, completions) runs before the idle hook,
    // whose work (grace-period flush, status snapshot) should not delay it.
    run_posted();
    if (idle_) {
        idle_();
    }
}

void event_loop::run() {
    running_ = true;
    while (running_) {
        run_once();
    }
}

} // namespace vcplane
