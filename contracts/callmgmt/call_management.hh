#pragma once
// The call-management NPI: CoNDIS call management (docs/contracts.md §4) as the typed
// dispatch tables through which clients (the config provisioner, control sessions) reach the
// call manager of a connection. Bound through the NMR registrar: each connection's call manager
// registers as a provider with its connection name as the NPI-specific characteristic; clients
// attach; then each side calls the other's dispatch table with the PEER's binding context.
//
// Statuses are NDIS_STATUS values (contracts.md §0.1, plus STATUS_INVALID_HANDLE and
// STATUS_INVALID_PARAMETER for stale handles and malformed requests). What each request can
// return, and why (the list request_statuses below is the same table as data; a test checks
// that the call manager produces every status listed and nothing else):
//
//   create_vc   SUCCESS | INVALID_PARAMETER (no place for the handle)   synchronous, never pends
//   delete_vc   SUCCESS | NOT_ACCEPTED (active) | CLOSING (close pending)
//               | FAILURE (not its creator) | INVALID_HANDLE               synchronous
//   make_call   SUCCESS | RESOURCES (overbooked, out of memory) | NOT_SUPPORTED (media,
//               or a contract without EAL to meter it)
//               | INVALID_PARAMETER | FAILURE (label in use, VC busy, connection going away,
//               no link in or out) | CLOSING (the VC's previous call is closing)
//               | INVALID_HANDLE
//   add_party   SUCCESS | RESOURCES (overbooked, too many parties, out of memory)
//               | NOT_SUPPORTED | INVALID_PARAMETER | FAILURE (no call, point-to-point, no link
//               out)
//               | CLOSING (the call is closing) | INVALID_HANDLE
//   drop_party  PENDING -> drop_party_complete | FAILURE (last party: close the call)
//               | INVALID_DATA (media has no close data) | INVALID_PARAMETER (data > MTU)
//               | RESOURCES (out of memory for the smaller party array) | INVALID_HANDLE
//   close_call  PENDING -> close_call_complete | FAILURE (more than one party left, no call)
//               | CLOSING (closing already) | INVALID_DATA | INVALID_PARAMETER | INVALID_HANDLE
//   modify_call_qos  SUCCESS | INVALID_PARAMETER (bad traffic_contract) | RESOURCES (overbooked,
//               out of memory)
//               | NOT_SUPPORTED (no clock to meter with: EAL is not running)
//               | FAILURE (VC carries no call) | CLOSING | INVALID_HANDLE     synchronous
//
// Completions: drop_party_complete and close_call_complete carry SUCCESS (done, and its close
// data, if any, sent) or RESOURCES (done, but its close data could not be sent: no buffer);
// incoming_close_call and incoming_drop_party CLOSING. Any request through a binding that is
// detaching or gone gets NOINTERFACE without reaching the call manager (call_through()).
//
// modify_call_qos (NdisClModifyCallQoS) changes an active call's traffic contract in place:
// the workers see the new meter with their next frame, no frame is lost or duplicated, the
// call's counters go on; the meters start from full buckets under the new contract.
//
// make_call and add_party never pend: publishing a VC or a party array needs no grace period.
// drop_party and close_call always pend: the party's (the VC's) state may be in use by a worker
// until a grace period has passed; then close data is sent (so it is the last frame the party
// gets), the state is freed, and the completion runs exactly once, on the control thread.
//
// Handles are never reused: a party handle dies when drop_party is accepted (PENDING; a refused
// drop leaves the party as it was) or with an incoming drop, a VC handle when delete_vc succeeds
// (or, for a VC the call manager created, when close_call_complete has run). A dead handle gets
// INVALID_HANDLE.
// A request through a binding that is detaching or gone gets NOINTERFACE (call_through()).

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "contracts/nmr/nmr.hh"
#include "vocab/call_vocabulary.hh"
#include "vocab/enum_names.hh"

namespace vcplane::callmgmt {

inline const nmr::npi_id npi{0x76637020'63616c6cull, 0x2d6d676d'74000001ull, "call-management"};

enum class status : uint32_t {
    success = 0x00000000,
    pending = 0x00000103,
    not_accepted = 0x00010003,
    failure = 0xC0000001,
    invalid_handle = 0xC0000008,
    invalid_parameter = 0xC000000D,
    resources = 0xC000009A,
    not_supported = 0xC00000BB,
    nointerface = 0xC00002B9,
    closing = 0xC0010002,
    invalid_data = 0xC0010015,
};
const char* status_name(status s);

// The statuses each request and completion can carry: the table above, as data.
struct operation_statuses {
    const char* operation;
    std::vector<status> statuses;
};
inline const std::vector<operation_statuses>& request_statuses() {
    using enum status;
    static const std::vector<operation_statuses> table = {
        {"create_vc", {success, invalid_parameter}},
        {"delete_vc", {success, not_accepted, closing, failure, invalid_handle}},
        {"make_call",
         {success, resources, not_supported, invalid_parameter, failure, closing, invalid_handle}},
        {"add_party",
         {success, resources, not_supported, invalid_parameter, failure, closing, invalid_handle}},
        {"drop_party",
         {pending, failure, invalid_data, invalid_parameter, resources, invalid_handle}},
        {"close_call",
         {pending, failure, closing, invalid_data, invalid_parameter, invalid_handle}},
        {"modify_call_qos",
         {success, invalid_parameter, resources, not_supported, failure, closing, invalid_handle}},
        {"drop_party_complete", {success, resources}},
        {"close_call_complete", {success, resources}},
        {"incoming_close_call", {closing}},
        {"incoming_drop_party", {closing}},
    };
    return table;
}

using vc_handle = uint64_t;
using party_handle = uint64_t;
using call_handle = vc_handle;

struct call_spec {
    std::string name;
    uint32_t key = 0;       // label or VID on the provider's (ingress) connection
    bool multipoint = true; // false: point-to-point, no party handles, no add_party
    traffic_contract flow;
    call_encapsulation encap; // where a label is pushed or popped (vocab/party_action.hh)
};

class provider_dispatch {
public:
    virtual ~provider_dispatch() = default;
    virtual status create_vc(void* provider_binding, void* client_vc_ctx, vc_handle* out) = 0;
    virtual status delete_vc(void* provider_binding, vc_handle vc) = 0;
    // vc == 0: the call manager creates the VC itself (and deletes it once the call closed);
    // *out_vc gets the VC either way. *out_party: the first party (0 for point-to-point).
    virtual status make_call(void* provider_binding, vc_handle vc, const call_spec& call,
                             const party_spec& first, void* client_vc_ctx, void* client_party_ctx,
                             vc_handle* out_vc, party_handle* out_party) = 0;
    virtual status add_party(void* provider_binding, vc_handle vc, const party_spec& party,
                             void* client_party_ctx, party_handle* out) = 0;
    virtual status drop_party(void* provider_binding, party_handle party,
                              std::span<const uint8_t> close_data) = 0;
    virtual status close_call(void* provider_binding, vc_handle vc, party_handle last,
                              std::span<const uint8_t> close_data) = 0;
    virtual status modify_call_qos(void* provider_binding, vc_handle vc,
                                   const traffic_contract& flow) = 0;
    // Why the last request of this binding failed, for operators and clients.
    virtual std::string last_error(void* provider_binding) const = 0;
};

class client_dispatch {
public:
    virtual ~client_dispatch() = default;
    virtual void drop_party_complete(void* client_binding, status s, party_handle party,
                                     void* client_party_ctx) = 0;
    virtual void close_call_complete(void* client_binding, status s, vc_handle vc,
                                     party_handle last, void* client_vc_ctx) = 0;
    // The call manager tore the call down (its connection went away or down). The VC is
    // deactivated when this arrives; a client-created VC must then be deleted by the client.
    virtual void incoming_close_call(void* client_binding, status reason, vc_handle vc,
                                     void* client_vc_ctx) = 0;
    // A party was dropped by the call manager (its egress went away); its handle is dead.
    virtual void incoming_drop_party(void* client_binding, status reason, party_handle party,
                                     void* client_party_ctx) = 0;
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

// Their names (vocab/enum_names.hh).
namespace vcplane {

template <>
struct enum_names<callmgmt::status> {
    static constexpr named<callmgmt::status> list[] = {
        {callmgmt::status::success, "SUCCESS"},
        {callmgmt::status::pending, "PENDING"},
        {callmgmt::status::not_accepted, "NOT_ACCEPTED"},
        {callmgmt::status::failure, "FAILURE"},
        {callmgmt::status::invalid_handle, "INVALID_HANDLE"},
        {callmgmt::status::invalid_parameter, "INVALID_PARAMETER"},
        {callmgmt::status::resources, "RESOURCES"},
        {callmgmt::status::not_supported, "NOT_SUPPORTED"},
        {callmgmt::status::nointerface, "NOINTERFACE"},
        {callmgmt::status::closing, "CLOSING"},
        {callmgmt::status::invalid_data, "INVALID_DATA"}};
};

} // namespace vcplane
