#pragma once
// What a session and the request handlers need of the listener that keeps the sessions: the
// config, the event loop, the namespace and the control plane, the shared receive buffer, and
// a way to say a session's teardown completed. daemon/control_server.hh implements it; the
// session depends on this interface only, so the listener and its sessions include each
// other nowhere (the listener makes sessions, sessions never make a listener).
//
// Control thread only, like everything in daemon/.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/event_loop.hh"
#include "config/config.hh"
#include "contracts/nsp/name_space.hh"
#include "control/control_plane.hh"
#include "daemon/protocol.hh"

namespace vcplane {

class session;

class session_host {
public:
    virtual const control_config& config() const = 0;
    virtual event_loop& loop() = 0;
    virtual control_plane& plane() = 0;
    virtual nsp::name_space& names() = 0;
    virtual size_t sessions() const = 0;
    // The receive buffers every session reads into (one session at a time: the control thread
    // is one): receive_slots() of control.max_message_bytes each.
    virtual std::vector<char>& receive_buffer() = 0;
    virtual size_t receive_slots() const = 0;
    static constexpr size_t max_receive_slots = 16;
    // A session still kept, by id; nullptr once it is forgotten (for posted tasks).
    virtual session* find_session(uint64_t id) = 0;
    // A session's teardown completed: it is answered and may be freed. Call it from a posted
    // task, never from inside the session's own member functions.
    virtual void forget(uint64_t id) = 0;
    // The reload request: WSAEOPNOTSUPP when the switch has no file to reload.
    virtual protocol::reply reload(bool dry_run, const std::optional<std::string>& text) = 0;

protected:
    ~session_host() = default;
};

} // namespace vcplane
