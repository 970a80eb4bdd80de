#pragma once
// Threading: control thread only. DPDK's device events (link, removal) arrive on its interrupt
// thread and are posted to the control loop before they reach the CM; disconnect() blocks the
// control thread for one grace period, so that no worker can see the port when it returns.
//
// The Connection Manager and its Connection Service Providers (docs/contracts.md §2).
//
// An adapter is a DPDK port, named by its device name. Every adapter that appears (at start
// or hot-plugged) and that no CSP manages is offered to each registered CSP in registration
// order until one returns success with a connection name (CmCspClaimConnection); that makes
// it a connection. An adapter nobody claims stays visible as unmanaged, with each CSP's
// answer as the reason. The claim loop is the only way a port becomes a connection.
//
// A connection claimed out of band belongs to whoever brought its port up: the CSP refuses
// the CM's disconnect with NOT_SUPPORTED. A connection the CM connected itself (connect())
// can be disconnected; disconnect is synchronous and returns only when no worker can see the
// port any more. Link changes and removals reach the CM on the control thread
// (adapter_link, adapter_removed), and the CM tells its listener.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "vocab/enum_names.hh"
#include "vocab/mac.hh"

namespace vcplane::cm {

// CM_RESULT. The numbers are one Windows build's (contracts.md §2.6); vcplane keeps them
// stable across its own releases.
enum class result : uint32_t {
    success = 0,
    invalid_connection = 13003,
    invalid_parameter = 13006,
    connection_not_acquired = 13018,
    connection_already_exists = 13021,
    connection_does_not_exist = 13022,
    out_of_memory = 13027,
    not_supported = 13030,
    unexpected = 13032,
};
const char* result_name(result r);

// The results each operation returns, counted under its name (vcplane_contract_operations_total,
// family "cm"), with vcplane's one CSP (control/config_csp) answering. A CSP may answer with
// any result; OUT_OF_MEMORY and CONNECTION_NOT_ACQUIRED are in the contract's vocabulary but
// vcplane's CSP never needs them.
//   claim_connection (one per CSP answer)  SUCCESS | INVALID_CONNECTION (not the CSP's) |
//                       CONNECTION_ALREADY_EXISTS (its name is taken) | INVALID_PARAMETER
//                       (an adapter without a device name)
//   connect             SUCCESS | CONNECTION_ALREADY_EXISTS | CONNECTION_DOES_NOT_EXIST (no
//                       CSP knows it) | NOT_SUPPORTED (it comes up out of band) | UNEXPECTED
//                       (the device could not be probed, or its data path not started)
//   disconnect          SUCCESS | CONNECTION_DOES_NOT_EXIST | NOT_SUPPORTED (claimed out of
//                       band) | UNEXPECTED (the device could not be removed)
struct operation_results {
    const char* operation;
    std::vector<result> statuses;
};
inline const std::vector<operation_results>& operation_result_table() {
    using enum result;
    static const std::vector<operation_results> table = {
        {"claim_connection",
         {success, invalid_connection, connection_already_exists, invalid_parameter}},
        {"connect",
         {success, connection_already_exists, connection_does_not_exist, not_supported,
          unexpected}},
        {"disconnect", {success, connection_does_not_exist, not_supported, unexpected}},
    };
    return table;
}

// CM_CONNECTION_STATE, the subset a port can be in.
enum class state : uint32_t {
    disconnected = 0,
    disconnected_unavailable = 1, // link down
    connecting = 100,
    connected = 200,
    disconnecting = 400,
};
const char* state_name(state s);

struct adapter {
    std::string device; // DPDK device name: the adapter's name
    uint16_t port = 0;
    mac_address mac{};
};

class csp {
public:
    virtual ~csp() = default;
    virtual const char* name() const = 0;
    // CmCspClaimConnection. "Not mine" is invalid_connection; a CSP that never claims
    // out-of-band adapters returns not_supported. On success, connection holds the name.
    virtual result claim_connection(const adapter& a, std::string& connection) = 0;
    // CmCspConnect: synchronous. The CSP brings the port up (e.g. probes its device) and
    // returns it in `out`.
    virtual result connect(const std::string& connection, adapter& out) = 0;
    // CmCspDisconnect: synchronous; when it returns, no worker can see the port.
    virtual result disconnect(const std::string& connection) = 0;
};

struct connection {
    std::string name;
    adapter port;
    state st = state::disconnected;
    csp* owner = nullptr;
    bool out_of_band = false; // claimed, not connected by the CM
};

struct unmanaged_adapter {
    adapter port;
    std::string reason;
};

// Who hears about connections: the daemon starts the port and its call manager on up, and
// tears them down on down.
struct listener {
    // Brings the connection's data path up; a non-empty string is why it could not (the CM then
    // forgets the connection and lists its adapter as unmanaged with that reason).
    std::function<std::string(const connection&)> up;
    std::function<void(const connection&, bool removed)> down; // removed: the port is gone
    std::function<void(const connection&)> link;               // link state changed
};

class connection_manager {
public:
    explicit connection_manager(listener l)
        : listener_(std::move(l)) {}

    void register_csp(csp& c) { csps_.push_back(&c); }

    // An adapter appeared. Runs the claim loop; returns the connection, or nullopt when
    // nobody claimed it (then it is listed in unmanaged()).
    const connection* adapter_arrived(const adapter& a);
    // The adapter is gone (hot removal): its connection goes down and is forgotten.
    void adapter_removed(const std::string& device);
    void adapter_link(const std::string& device, bool up);

    // CM-initiated connect: asks each CSP in turn until one connects it.
    result connect(const std::string& connection);
    // CM-initiated disconnect (CmCspDisconnect). Whatever the CSP answers, the connection is
    // disconnected afterwards, except that a refused (not_supported) one stays as it was.
    result disconnect(const std::string& connection);

    const connection* find(const std::string& name) const;
    const connection* find_by_device(const std::string& device) const;
    const std::vector<connection>& connections() const { return connections_; }
    const std::vector<unmanaged_adapter>& unmanaged() const { return unmanaged_; }

private:
    // Every outcome is counted (vcplane_contract_operations_total), claims per CSP answer.
    static result counted(const char* op, result r);
    result connect_uncounted(const std::string& connection);
    result disconnect_uncounted(const std::string& connection);

    listener listener_;
    std::vector<csp*> csps_;
    std::vector<connection> connections_;
    std::vector<unmanaged_adapter> unmanaged_;
};

} // namespace vcplane::cm

// Their names (vocab/enum_names.hh).
namespace vcplane {

template <>
struct enum_names<cm::result> {
    static constexpr named<cm::result> list[] = {
        {cm::result::success, "SUCCESS"},
        {cm::result::invalid_connection, "INVALID_CONNECTION"},
        {cm::result::invalid_parameter, "INVALID_PARAMETER"},
        {cm::result::connection_not_acquired, "CONNECTION_NOT_ACQUIRED"},
        {cm::result::connection_already_exists, "CONNECTION_ALREADY_EXISTS"},
        {cm::result::connection_does_not_exist, "CONNECTION_DOES_NOT_EXIST"},
        {cm::result::out_of_memory, "OUT_OF_MEMORY"},
        {cm::result::not_supported, "NOT_SUPPORTED"},
        {cm::result::unexpected, "UNEXPECTED"}};
};

template <>
struct enum_names<cm::state> {
    static constexpr named<cm::state> list[] = {
        {cm::state::disconnected, "disconnected"},
        {cm::state::disconnected_unavailable, "disconnected_unavailable"},
        {cm::state::connecting, "connecting"},
        {cm::state::connected, "connected"},
        {cm::state::disconnecting, "disconnecting"}};
};

} // namespace vcplane
