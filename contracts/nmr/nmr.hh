#pragma once
// Threading: everything runs on the control thread; callbacks are invoked synchronously from
// registrar calls, except deregistration completions, which are posted to the control loop.
//
// The Network Module Registrar (docs/contracts.md §1), rebuilt for one process.
//
// Modules register as clients or providers of an NPI (identified by an npi_id). The
// registrar pairs every client with every provider of the same NPI and lets the CLIENT
// decide: it calls client::attach_provider, and the client, to accept, calls
// registrar::client_attach_provider, which synchronously calls provider::attach_client and
// returns that status (NOINTERFACE = declined). On any failure the client frees its own
// binding context; the cleanup callbacks are only for bindings that attached.
//
// Detach happens only through deregistration. For every binding of the deregistering module
// BOTH sides' detach callbacks are called; each returns SUCCESS (no calls into the peer in
// progress) or PENDING (and later calls the matching ..._detach_complete). When both sides are
// done, both cleanup callbacks run (they free the binding contexts), and when every binding of
// a registration is gone its deregistration completes. deregister_* returns PENDING as its
// normal result; completion is reported by on_deregister_complete (a callback posted to the
// control loop) or awaited with wait_for_deregister_complete (shutdown path only: it pumps
// the loop itself).
//
// Handles (registrations and bindings) are (slot, generation): a handle used after its
// object is gone is recognised and refused, never dereferenced.
//
// Statuses: every registrar call, and every detach callback the registrar makes, is counted
// (vcplane_contract_operations_total, family "nmr") with the status it returned, and
// operation_status_table() below lists every status each one can return; a test holds the
// code to it. Registration never runs out of room (the tables
// grow), so no INSUFFICIENT_RESOURCES is produced.

#include "vocab/enum_names.hh"
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace vcplane::nmr {

// NTSTATUS values, as in the contract.
enum class status : uint32_t {
    success = 0x00000000,
    pending = 0x00000103,
    invalid_parameter = 0xC000000D,
    nointerface = 0xC00002B9,
};
const char* status_name(status s);

// The statuses each registrar call returns, as counted under its operation name:
//   register_client, register_provider  SUCCESS | INVALID_PARAMETER (no NPI, module or place
//                                       for the handle)
//   client_attach_provider              SUCCESS | INVALID_PARAMETER (the binding is not
//                                       attaching, no place for the provider's context, a
//                                       provider with no dispatch table) | the provider's
//                                       refusal (NOINTERFACE)
//   attach (the client's decision)      SUCCESS | NOINTERFACE (declined) | the client's failure
//                                       (vcplane's clients pass client_attach_provider's on)
//   deregister_client, deregister_provider  PENDING | INVALID_PARAMETER (not an active
//                                       registration of that kind)
//   deregister_*_complete               SUCCESS
//   detach_provider, detach_client      what the client's and the provider's detach callback
//                                       answered: SUCCESS | PENDING
//   client_detach_provider_complete, provider_detach_client_complete  SUCCESS |
//                                       INVALID_PARAMETER (no detach of that side pending)
//   on_deregister_complete, wait_for_deregister_complete  SUCCESS | INVALID_PARAMETER
struct operation_statuses {
    const char* operation;
    std::vector<status> statuses;
};
inline const std::vector<operation_statuses>& operation_status_table() {
    using enum status;
    static const std::vector<operation_statuses> table = {
        {"register_client", {success, invalid_parameter}},
        {"register_provider", {success, invalid_parameter}},
        {"client_attach_provider", {success, invalid_parameter, nointerface}},
        {"attach", {success, nointerface, invalid_parameter}},
        {"deregister_client", {pending, invalid_parameter}},
        {"deregister_provider", {pending, invalid_parameter}},
        {"deregister_client_complete", {success}},
        {"deregister_provider_complete", {success}},
        {"detach_provider", {success, pending}},
        {"detach_client", {success, pending}},
        {"client_detach_provider_complete", {success, invalid_parameter}},
        {"provider_detach_client_complete", {success, invalid_parameter}},
        {"on_deregister_complete", {success, invalid_parameter}},
        {"wait_for_deregister_complete", {success, invalid_parameter}},
    };
    return table;
}

struct npi_id {
    uint64_t hi;
    uint64_t lo;
    const char* name; // for logs and metrics; not compared
    bool operator==(const npi_id& o) const { return hi == o.hi && lo == o.lo; }
};

struct module_id {
    std::string name; // unique per module, e.g. "call-manager/uplink0" (MIT_IF_LUID analogue)
};

// What a registration tells its peers (NPI_REGISTRATION_INSTANCE). Pairing is by npi only;
// `number` and `npi_specific` are passed to the attach callbacks, which decide.
struct registration_instance {
    const npi_id* npi = nullptr;
    const module_id* module = nullptr;
    uint32_t number = 0;
    const void* npi_specific = nullptr;
};

struct handle {
    uint32_t slot = UINT32_MAX;
    uint32_t generation = 0;
    bool operator==(const handle& o) const = default;
};

class client {
public:
    virtual ~client() = default;
    // NPI_CLIENT_ATTACH_PROVIDER_FN. To accept, call registrar::client_attach_provider and
    // return exactly its status; to decline, return nointerface without calling it.
    virtual status attach_provider(handle binding, void* client_context,
                                   const registration_instance& provider) = 0;
    // NPI_CLIENT_DETACH_PROVIDER_FN: success, or pending + client_detach_provider_complete.
    virtual status detach_provider(void* client_binding_context) = 0;
    virtual void cleanup_binding_context(void* client_binding_context) = 0;
};

class provider {
public:
    virtual ~provider() = default;
    // NPI_PROVIDER_ATTACH_CLIENT_FN: set both outputs and return success, or decline.
    virtual status attach_client(handle binding, void* provider_context,
                                 const registration_instance& client, void* client_binding_context,
                                 const void* client_dispatch, void** provider_binding_context,
                                 const void** provider_dispatch) = 0;
    virtual status detach_client(void* provider_binding_context) = 0;
    virtual void cleanup_binding_context(void* provider_binding_context) = 0;
};

enum class binding_state : uint8_t { attaching, attached, detaching };

struct registrar_counts {
    size_t clients = 0;
    size_t providers = 0;
    size_t deregistering = 0;
    size_t attaching = 0;
    size_t attached = 0;
    size_t detaching = 0;
};

class registrar {
public:
    using post_fn = std::function<void(std::function<void()>)>;
    // post: runs a function later on the control thread (deregistration completions).
    explicit registrar(post_fn post);
    ~registrar();
    registrar(const registrar&) = delete;
    registrar& operator=(const registrar&) = delete;

    // The module, the instance and what it points to must outlive the registration.
    status register_client(client& c, const registration_instance& inst, void* client_context,
                           handle* out);
    status register_provider(provider& p, const registration_instance& inst, void* provider_context,
                             handle* out);

    // NmrClientAttachProvider: only from inside client::attach_provider for that binding.
    status client_attach_provider(handle binding, void* client_binding_context,
                                  const void* client_dispatch, void** provider_binding_context,
                                  const void** provider_dispatch);

    // pending (the normal result) or invalid_parameter (unknown handle, or already deregistering).
    status deregister_client(handle registration);
    status deregister_provider(handle registration);

    void client_detach_provider_complete(handle binding);
    void provider_detach_client_complete(handle binding);

    // Non-blocking completion for the event loop: fn is posted once the deregistration is
    // complete; the registration handle dies then. invalid_parameter if not deregistering.
    status on_deregister_complete(handle registration, std::function<void()> fn);
    // Blocking form (NmrWaitFor...DeregisterComplete), for the shutdown path: calls pump()
    // until complete. invalid_parameter if called before deregister or with a bad handle.
    status wait_for_deregister_complete(handle registration, const std::function<void()>& pump);

    // A binding a module may start a new call through: attached, not detaching.
    bool binding_usable(handle binding) const;
    // A binding that still exists (a completion of a call already in progress may use it).
    bool binding_alive(handle binding) const;

    registrar_counts counts() const;

private:
    struct registration;
    struct binding;
    status add_registration(client* c, provider* p, const registration_instance& inst, void* ctx,
                            handle* out);
    registration* find(handle h);
    binding* find_binding(handle h);
    const binding* find_binding(handle h) const;
    void attach(uint32_t client_slot, uint32_t provider_slot);
    status deregister(handle h, bool is_client);
    void side_done(handle binding, bool client_side);
    void finish_binding(uint32_t slot);
    void maybe_complete(uint32_t registration_slot);
    void deliver_complete(uint32_t slot); // posts the on_deregister_complete function, if any

    post_fn post_;
    std::vector<registration> registrations_;
    std::vector<binding> bindings_;
    std::vector<uint32_t> free_registrations_;
    std::vector<uint32_t> free_bindings_;
};

} // namespace vcplane::nmr

// Their names (vocab/enum_names.hh).
namespace vcplane {

template <>
struct enum_names<nmr::status> {
    static constexpr named<nmr::status> list[] = {
        {nmr::status::success, "SUCCESS"},
        {nmr::status::pending, "PENDING"},
        {nmr::status::invalid_parameter, "INVALID_PARAMETER"},
        {nmr::status::nointerface, "NOINTERFACE"}};
};

} // namespace vcplane
