#include "daemon/control_server.hh"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <grp.h>
#include <pwd.h>
#include <set>
#include <stdexcept>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/alloc_faults.hh"
#include "base/log.hh"
#include "daemon/protocol.hh"
#include "daemon/reload.hh"
#include "daemon/session.hh"

namespace vcplane {

using nlohmann::json;
using namespace protocol;
using nsp::wsa;

namespace {

std::set<uid_t> resolve_users(const std::vector<std::string>& names) {
    std::set<uid_t> out;
    for (const auto& n : names) {
        if (const passwd* pw = getpwnam(n.c_str())) {
            out.insert(pw->pw_uid);
        } else {
            log::warning("control.allowed_users: no user '{}'", n);
        }
    }
    return out;
}

std::set<gid_t> resolve_groups(const std::vector<std::string>& names) {
    std::set<gid_t> out;
    for (const auto& n : names) {
        if (const group* gr = getgrnam(n.c_str())) {
            out.insert(gr->gr_gid);
        } else {
            log::warning("control.allowed_groups: no group '{}'", n);
        }
    }
    return out;
}

bool allowed(const ucred& who, const control_config& cfg) {
    if (resolve_users(cfg.allowed_users).count(who.uid) != 0) {
        return true;
    }
    const auto groups = resolve_groups(cfg.allowed_groups);
    if (groups.empty()) {
        return false;
    }
    if (groups.count(who.gid) != 0) {
        return true;
    }
    // The user's supplementary groups count too.
    const passwd* pw = getpwuid(who.uid);
    if (pw == nullptr) {
        return false;
    }
    std::vector<gid_t> list(64);
    int n = int(list.size());
    if (getgrouplist(pw->pw_name, pw->pw_gid, list.data(), &n) < 0) {
        list.resize(size_t(n));
        getgrouplist(pw->pw_name, pw->pw_gid, list.data(), &n);
    }
    for (int i = 0; i < n; ++i) {
        if (groups.count(list[size_t(i)]) != 0) {
            return true;
        }
    }
    return false;
}

} // namespace

control_server::control_server(const control_config& cfg, event_loop& loop, control_plane& plane,
                               reload_path* reloads)
    : cfg_(cfg)
    , loop_(loop)
    , plane_(plane)
    , reloads_(reloads)
    , receive_slots_(
          std::clamp<size_t>((size_t(1) << 20) / cfg.max_message_bytes, 1, max_receive_slots))
    , receive_buffer_(receive_slots_ * cfg.max_message_bytes) {
    const auto fail = [&](const std::string& what) {
        throw std::runtime_error(
            fmt::format("control.socket: {} {}: {}", what, cfg.socket, std::strerror(errno)));
    };
    // The directory, as systemd's RuntimeDirectory would make it.
    const std::string dir = cfg.socket.substr(0, cfg.socket.rfind('/'));
    if (!dir.empty()) {
        mkdir(dir.c_str(), 0755);
    }
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", cfg.socket.c_str());
    // A socket file left by a daemon that died is removed; one that answers is another daemon.
    const int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
        close(probe);
        errno = EADDRINUSE;
        fail("another daemon answers on");
    }
    close(probe);
    unlink(cfg.socket.c_str());
    listen_fd_ = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) {
        fail("cannot create");
    }
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
        close(listen_fd_);
        fail("cannot bind");
    }
    chmod(cfg.socket.c_str(), cfg.mode);
    if (!cfg.owner.empty() || !cfg.group.empty()) {
        const passwd* pw = cfg.owner.empty() ? nullptr : getpwnam(cfg.owner.c_str());
        const group* gr = cfg.group.empty() ? nullptr : getgrnam(cfg.group.c_str());
        if ((!cfg.owner.empty() && pw == nullptr) || (!cfg.group.empty() && gr == nullptr)) {
            log::warning("control.owner/group: unknown user or group; the socket keeps the "
                         "daemon's");
        } else if (chown(cfg.socket.c_str(), pw ? pw->pw_uid : uid_t(-1),
                         gr ? gr->gr_gid : gid_t(-1)) != 0) {
            log::warning("control.socket: chown failed: {}", std::strerror(errno));
        }
    }
    if (listen(listen_fd_, 128) != 0) {
        close(listen_fd_);
        fail("cannot listen on");
    }
    loop_.watch(listen_fd_, [this](uint32_t) { accept_one(); });
    log::notice("control socket {}", cfg.socket);
}

control_server::~control_server() {
    for (auto& [id, s] : sessions_) {
        s->end(true);
    }
    while (!lingering_.empty()) {
        end_linger(lingering_.front().first);
    }
    if (linger_timer_ >= 0) {
        loop_.unwatch(linger_timer_);
        close(linger_timer_);
    }
    if (listen_fd_ >= 0) {
        loop_.unwatch(listen_fd_);
        close(listen_fd_);
        unlink(cfg_.socket.c_str());
    }
}

void control_server::close_all(const std::function<void()>& pump) {
    std::vector<uint64_t> ids;
    for (const auto& [id, s] : sessions_) {
        ids.push_back(id);
    }
    for (uint64_t id : ids) {
        auto it = sessions_.find(id);
        if (it != sessions_.end()) {
            it->second->end(true);
        }
    }
    while (!sessions_.empty()) {
        pump();
    }
}

void control_server::accept_one() {
    for (int i = 0; i < 64; ++i) {
        const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            return;
        }
        ucred who{};
        socklen_t len = sizeof(who);
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &who, &len);
        // The operator's line is written before the client hears: whoever sees the refusal
        // (a test, a script tailing the log) finds its reason already in the log.
        const auto refuse = [this, fd](const reply& r, const std::string& why) {
            log::notice("control: {}", why);
            const std::string m = r.text(std::nullopt);
            [[maybe_unused]] ssize_t n = send(fd, m.data(), m.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
            linger_close(fd);
        };
        if (!allowed(who, cfg_)) {
            refuse(wsa_reply(wsa::access_denied,
                             fmt::format("uid {} is not allowed on this socket", who.uid)),
                   fmt::format("refused pid {} uid {} gid {} (not in control.allowed_users or "
                               "allowed_groups)",
                               who.pid, who.uid, who.gid));
            continue;
        }
        if (sessions_.size() >= cfg_.max_sessions) {
            refuse(wsa_reply(wsa::not_enough_memory,
                             fmt::format("{} sessions is the limit", cfg_.max_sessions)),
                   "refused a session: control.max_sessions reached");
            continue;
        }
        if (!open_session(fd)) {
            refuse(wsa_reply(wsa::not_enough_memory, "out of memory for a session"),
                   "refused a session: out of memory");
        }
    }
}

bool control_server::open_session(int fd) {
    // The session's place and its watch first, the session last: until it exists, nothing
    // holds fd, so a refusal can still be written to it.
    const uint64_t id = next_session_;
    auto slot = sessions_.end();
    bool watched = false;
    try {
        alloc_faults::throw_if_failing(alloc_faults::site::session);
        slot = sessions_.emplace(id, nullptr).first;
        std::unique_ptr<session>* held = &slot->second; // map nodes do not move
        loop_.watch(fd, [held](uint32_t ev) { (*held)->on_events(ev); });
        watched = true;
        slot->second = std::make_unique<session>(*this, id, fd);
    } catch (const std::bad_alloc&) {
        if (watched) {
            loop_.unwatch(fd);
        }
        if (slot != sessions_.end()) {
            sessions_.erase(slot);
        }
        return false;
    }
    ++next_session_;
    return true;
}

// Closing a socket with unread input resets the peer, and the refusal it has not read yet is
// lost. So: no more output (the peer reads the refusal, then EOF), input discarded, and the
// socket closed when the peer closes it, or after two seconds.
void control_server::linger_close(int fd) {
    shutdown(fd, SHUT_WR);
    lingering_.emplace_back(fd, std::chrono::steady_clock::now());
    loop_.watch(fd, [this, fd](uint32_t) {
        char sink[512];
        ssize_t n;
        while ((n = recv(fd, sink, sizeof(sink), MSG_DONTWAIT)) > 0) {
        }
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
            end_linger(fd);
        }
    });
    if (linger_timer_ < 0) {
        linger_timer_ = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        itimerspec every{{1, 0}, {1, 0}};
        timerfd_settime(linger_timer_, 0, &every, nullptr);
        loop_.watch(linger_timer_, [this](uint32_t) {
            uint64_t ticks;
            [[maybe_unused]] ssize_t r = read(linger_timer_, &ticks, sizeof(ticks));
            const auto old = std::chrono::steady_clock::now() - std::chrono::seconds(2);
            std::vector<int> due;
            for (const auto& [fd, since] : lingering_) {
                if (since < old) {
                    due.push_back(fd);
                }
            }
            for (int fd : due) {
                end_linger(fd);
            }
        });
    }
}

void control_server::end_linger(int fd) {
    loop_.unwatch(fd);
    close(fd);
    std::erase_if(lingering_, [fd](const auto& e) { return e.first == fd; });
}

session* control_server::find_session(uint64_t id) {
    auto it = sessions_.find(id);
    return it == sessions_.end() ? nullptr : it->second.get();
}

reply control_server::reload(bool dry_run, const std::optional<std::string>& text) {
    if (reloads_ == nullptr) {
        return wsa_reply(wsa::not_supported, "this switch has no configuration to reload");
    }
    return reply(reloads_->run(dry_run, text));
}

void control_server::forget(uint64_t id) {
    auto it = sessions_.find(id);
    if (it != sessions_.end()) {
        it->second->finish();
        sessions_.erase(it);
    }
}

} // namespace vcplane
