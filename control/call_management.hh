#pragma once
// The call-management NPI: how clients (the config provisioner, control sessions) reach the
// call manager of a connection (DESIGN §5.2–5.3). Bound through the NMR registrar: each
// connection's call manager registers as a provider with its connection name as the
// NPI-specific characteristic, clients attach, and from then on the two call each other's
// dispatch tables, passing the PEER's binding context first.
//
// Statuses are NDIS_STATUS values (reference/contracts.md §0.1). Operations that must wait for
// the workers return pending and complete exactly once, later, on the control thread, through
// the client's dispatch (close_call_complete, ...). A call through a binding that is detaching
// or gone is refused with nointerface before it reaches the provider (call_through()).

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.hh"
#include "control/nmr.hh"

namespace vcplane::callmgmt {

inline const nmr::npi_id npi{0x76637020'63616c6cull, 0x2d6d676d'74000001ull, "call-management"};

enum class status : uint32_t {
    success = 0x00000000,
    pending = 0x00000103,
    not_accepted = 0x00010003,
    failure = 0xC0000001,
    invalid_handle = 0xC0000008,
    resources = 0xC000009A,
    not_supported = 0xC00000BB,
    nointerface = 0xC00002B9,
    closing = 0xC0010002,
    invalid_data = 0xC0010015,
};
const char* status_name(status s);

using call_handle = uint64_t; // never reused: a stale handle is recognised, not misapplied

struct party_spec {
    std::string name;
    std::string connection; // egress
    uint32_t key = 0;       // out-label or out-VID
    mac_address next_hop{};
};

struct call_spec {
    std::string name;
    uint32_t key = 0; // label or VID on the provider's (ingress) connection
    std::vector<party_spec> parties;
};

// The provider's dispatch table (what clients call).
class provider_dispatch {
public:
    virtual ~provider_dispatch() = default;
    virtual status make_call(void* provider_binding, const call_spec& spec, void* client_call_ctx,
                             call_handle* out) = 0;
    virtual status close_call(void* provider_binding, call_handle call) = 0;
};

// The client's dispatch table (what the call manager calls back).
class client_dispatch {
public:
    virtual ~client_dispatch() = default;
    virtual void close_call_complete(void* client_binding, status s, call_handle call,
                                     void* client_call_ctx) = 0;
    // The call manager closed the call itself (its connection went away); the VC is gone
    // and the handle is dead when this arrives. The client must not close it again.
    virtual void incoming_close_call(void* client_binding, status reason, call_handle call,
                                     void* client_call_ctx) = 0;
    // A party was dropped by the call manager (its egress connection went away).
    virtual void incoming_drop_party(void* client_binding, status reason, call_handle call,
                                     const std::string& party, void* client_call_ctx) = 0;
};

// A client's view of one attached call manager.
struct provider_ref {
    nmr::handle binding;
    void* provider_binding = nullptr;
    provider_dispatch* dispatch = nullptr;
    std::string connection;
};

// Calls through a binding only while the registrar says it is usable: a detached or stale
// binding gives nointerface and the provider's freed context is never touched.
template <typename F>
status call_through(const nmr::registrar& reg, const provider_ref& p, F&& f) {
    if (!reg.binding_usable(p.binding)) {
        return status::nointerface;
    }
    return f(*p.dispatch, p.provider_binding);
}

} // namespace vcplane::callmgmt
