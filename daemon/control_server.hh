#pragma once
// The control socket and its client sessions (docs/design.md §5.4, §6; docs/contracts.md §3).
//
// Transport: a Unix domain SOCK_SEQPACKET socket (one message = one JSON object, at most
// control.max_message_bytes). Peers are checked with SO_PEERCRED against control.allowed_users
// and allowed_groups; anyone else gets one WSAEACCES reply and is disconnected.
//
// Protocol (protocol described in full in README.md, "Control protocol"):
//   request  {"id": N, "op": "...", ...arguments}
//   reply    {"id": N, "status": "NAME", "code": N, "message": "...", ...results}
//   event    {"event": "...", ...}          (incoming close/drop, unsolicited)
// Every request gets exactly one reply. A request that pends (drop_party, close_call,
// lookup_next) is answered when it completes, like WSAProviderCompleteAsyncCall.
//
// Sessions: "hello" is NSPv2Startup (nesting: every hello needs a goodbye), "goodbye" is
// NSPv2Cleanup (the last one releases everything the session owns and closes the connection).
// A peer that disappears without its last goodbye gets a Rundown: every lookup it held is ended
// and every call it made is closed through its call managers; the session is freed when those
// completions have run. Each session is an NMR client of the call-management NPI.
//
// Bounds: at most control.max_sessions sessions; a client that does not read its replies is
// disconnected (Rundown) once control.max_queued_replies are waiting for it. Control thread only.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "base/event_loop.hh"
#include "config/config.hh"
#include "contracts/nsp/name_space.hh"
#include "control/control_plane.hh"

namespace vcplane {

class control_server {
public:
    // Throws std::runtime_error (naming control.socket) when it cannot listen.
    control_server(const control_config& cfg, event_loop& loop, control_plane& plane);
    ~control_server(); // runs down every session still open

    size_t sessions() const { return sessions_.size(); }
    const nsp::name_space& names() const { return names_; }
    // The config file's [services]: registered under session 0, which no client session is,
    // so sessions can look them up but not change or delete them.
    nsp::wsa set_file_service(const service_config& s);
    nsp::wsa delete_file_service(const std::string& name);
    // Ends every session (shutdown); pump runs the loop until their teardown completed.
    void close_all(const std::function<void()>& pump);

    // The "reload" request: dry_run, and (dry runs only) a client's config text to plan
    // against instead of the daemon's file. Returns the whole reply (status and results).
    using reload_handler =
        std::function<nlohmann::json(bool dry_run, const std::optional<std::string>& text)>;
    void set_reload_handler(reload_handler h) { reload_ = std::move(h); }

private:
    class session;
    void accept_one();
    void forget(uint64_t id); // after a session's teardown completed
    void linger_close(int fd);
    void end_linger(int fd);

    const control_config& cfg_;
    event_loop& loop_;
    control_plane& plane_;
    nsp::name_space names_;
    int listen_fd_ = -1;
    static constexpr uint64_t file_session = 0; // the config file's services
    uint64_t next_session_ = 1;
    std::map<uint64_t, std::unique_ptr<session>> sessions_;
    std::vector<std::pair<int, std::chrono::steady_clock::time_point>> lingering_; // refused
    int linger_timer_ = -1;
    reload_handler reload_;
};

} // namespace vcplane
