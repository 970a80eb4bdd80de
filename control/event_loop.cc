#include "control/event_loop.hh"

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

void event_loop::watch(int fd, handler h) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
        throw std::runtime_error(std::string("epoll_ctl: ") + std::strerror(errno));
    }
    handlers_[fd] = std::move(h);
}

void event_loop::unwatch(int fd) {
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    handlers_.erase(fd);
}

void event_loop::run() {
    running_ = true;
    epoll_event events[16];
    while (running_) {
        const int n = epoll_wait(epoll_fd_, events, 16, -1);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw std::runtime_error(std::string("epoll_wait: ") + std::strerror(errno));
        }
        for (int i = 0; i < n && running_; ++i) {
            auto it = handlers_.find(events[i].data.fd);
            if (it != handlers_.end()) {
                // Copy: the handler may unwatch its own fd.
                handler h = it->second;
                h(events[i].events);
            }
        }
    }
}

} // namespace vcplane
