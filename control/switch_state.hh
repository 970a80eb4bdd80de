#pragma once
// What the control thread knows about the running switch: the connections it claimed, the
// calls and parties it provisioned, and the forwarding table it publishes them into. The
// control thread is the only writer of the forwarding table (dataplane/rcu.hh).

#include <memory>
#include <string>
#include <vector>

#include "config/config.hh"
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

struct party_state {
    std::string name;
    std::string connection;
    uint32_t key;
    mac_address next_hop;
};

struct call_state {
    std::string name;
    std::string connection;
    uint32_t key;
    std::vector<party_state> parties;
    vc* circuit; // what the workers see for this call
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

    // Build the VC and its party array and publish them. Throws std::invalid_argument with
    // the reason when the call cannot be made (unknown connection, key in use, ...).
    const call_state& make_call(const call_config& call);

    const std::vector<connection_state>& connections() const noexcept { return connections_; }
    const std::vector<call_state>& calls() const noexcept { return calls_; }
    const connection_state* find_connection(const std::string& name) const noexcept;
    size_t party_count() const noexcept;

private:
    forwarding_table table_;
    std::vector<connection_state> connections_;
    std::vector<call_state> calls_;
    std::vector<std::unique_ptr<connection_entry>> entries_;
    uint32_t next_vc_id_ = 0;
};

} // namespace vcplane
