#pragma once
// What the control thread knows about the running switch: the connections it claimed, the
// calls and parties made on them, and the forwarding table it publishes them into. The
// control thread is the only writer of the forwarding table (dataplane/rcu.hh).
//
// Removing anything is two steps: unpublish now (what the workers see changes at once), free
// later, after a grace period. Functions that unpublish hand back what must be freed.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hh"
#include "control/call_management.hh"
#include "dataplane/tables.hh"

namespace vcplane {

struct connection_state {
    std::string name;
    std::string device;
    uint16_t port;
    media_kind media;
    mac_address mac;
    uint32_t mtu;
    connection_entry* entry; // what the workers see for this port
};

struct call_state {
    callmgmt::call_handle id;
    std::string name;
    std::string connection; // ingress
    uint32_t key;
    std::vector<callmgmt::party_spec> parties;
    vc* circuit; // what the workers see for this call
};

// A VC or a party array unpublished and waiting for its grace period.
struct retired_call {
    vc* circuit = nullptr;
    party_set* parties = nullptr;
    void free() noexcept;
};

class switch_state {
public:
    switch_state() = default;
    // Frees every table object directly: the caller guarantees that no worker runs any more.
    ~switch_state();
    switch_state(const switch_state&) = delete;
    switch_state& operator=(const switch_state&) = delete;

    forwarding_table& table() noexcept { return table_; }
    const forwarding_table& table() const noexcept { return table_; }

    // Publish a claimed port as a connection. Throws std::invalid_argument on a clash.
    const connection_state& add_connection(const std::string& name, const std::string& device,
                                           uint16_t port, media_kind media, const mac_address& mac,
                                           uint32_t mtu);
    // Unpublish; the entry is freed by the caller after a grace period. Calls on it must be
    // gone already.
    std::unique_ptr<connection_entry> remove_connection(const std::string& name);

    // Build the VC and its party array and publish them. Throws std::invalid_argument with
    // the reason when the call cannot be made (unknown connection, key in use, ...).
    const call_state& make_call(const std::string& ingress, const callmgmt::call_spec& spec);
    // Convenience for provisioning straight from the config (tests, the daemon at start).
    const call_state& make_call(const call_config& cfg);
    // Unpublish a call's VC; the VC and its parties are freed after a grace period.
    retired_call unpublish_call(callmgmt::call_handle id);
    // Publish a new party array for a call (a subset of its parties); the old one is returned.
    retired_call replace_parties(callmgmt::call_handle id,
                                 std::vector<callmgmt::party_spec> parties);

    const std::vector<connection_state>& connections() const noexcept { return connections_; }
    const std::map<callmgmt::call_handle, call_state>& calls() const noexcept { return calls_; }
    const connection_state* find_connection(const std::string& name) const noexcept;
    const call_state* find_call(callmgmt::call_handle id) const noexcept;
    const call_state* find_call(const std::string& name) const noexcept;
    size_t party_count() const noexcept;

private:
    party_set* build_parties(const connection_state& in, const std::string& call,
                             const std::vector<callmgmt::party_spec>& parties) const;

    forwarding_table table_;
    std::vector<connection_state> connections_;
    std::vector<std::unique_ptr<connection_entry>> entries_;
    std::map<callmgmt::call_handle, call_state> calls_;
    callmgmt::call_handle next_call_ = 1;
    uint32_t next_vc_id_ = 0;
};

} // namespace vcplane
