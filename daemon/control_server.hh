#pragma once
// The control socket and its client sessions (docs/design.md §5.4, §6; docs/contracts.md §3).
//
// Transport: a Unix domain SOCK_SEQPACKET socket (one message = one JSON object, at most
// control.max_message_bytes). Peers are checked with SO_PEERCRED against control.allowed_users
// and allowed_groups; anyone else gets one WSAEACCES reply and is disconnected.
//
// Protocol (README "Control socket"): one JSON object per message; requests are answered by
// the handler table (daemon/request_handlers.hh), each session is a daemon/session.hh. This
// class is the listener: it owns the socket, checks each peer, keeps the sessions (their
// namespace is the control plane's), and frees a session once its teardown completed.
//
// Bounds: at most control.max_sessions sessions (WSA_NOT_ENOUGH_MEMORY to the next one, and to
// one there is no memory for), a
// peer the config does not allow gets WSAEACCES; both refusals are sent before the socket is
// closed. Control thread only.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "base/event_loop.hh"
#include "config/config.hh"
#include "contracts/nsp/name_space.hh"
#include "control/control_plane.hh"
#include "daemon/protocol.hh"
#include "daemon/session_host.hh"

namespace vcplane {

class reload_path;
class session;

class control_server final : public session_host {
public:
    // Throws std::runtime_error (naming control.socket) when it cannot listen. reloads serves
    // the reload request (nullptr: WSAEOPNOTSUPP).
    control_server(const control_config& cfg, event_loop& loop, control_plane& plane,
                   reload_path* reloads);
    ~control_server(); // runs down every session still open

    size_t sessions() const override { return sessions_.size(); }
    const nsp::name_space& names() const { return plane_.names(); }
    // Ends every session (shutdown); pump runs the loop until their teardown completed.
    void close_all(const std::function<void()>& pump);

    // session_host: for sessions and request handlers.
    const control_config& config() const override { return cfg_; }
    event_loop& loop() override { return loop_; }
    control_plane& plane() override { return plane_; }
    nsp::name_space& names() override { return plane_.names(); }
    // receive_slots() of control.max_message_bytes each, as many messages as one recvmmsg
    // takes, at most 1 MiB in all, kept rather than zeroed afresh for every read.
    std::vector<char>& receive_buffer() override { return receive_buffer_; }
    size_t receive_slots() const override { return receive_slots_; }
    session* find_session(uint64_t id) override;
    void forget(uint64_t id) override;
    protocol::reply reload(bool dry_run, const std::optional<std::string>& text) override;

private:
    void accept_one();
    // A session for an accepted fd, watched; false when memory ran out, and then nothing is
    // made and fd is still open (the caller refuses it).
    bool open_session(int fd);
    void linger_close(int fd);
    void end_linger(int fd);

    const control_config& cfg_;
    event_loop& loop_;
    control_plane& plane_;
    int listen_fd_ = -1;
    uint64_t next_session_ = control_plane::file_session + 1;
    std::map<uint64_t, std::unique_ptr<session>> sessions_;
    std::vector<std::pair<int, std::chrono::steady_clock::time_point>> lingering_; // refused
    int linger_timer_ = -1;
    reload_path* reloads_;
    size_t receive_slots_;
    std::vector<char> receive_buffer_;
};

} // namespace vcplane
