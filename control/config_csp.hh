#pragma once
// The config file's connection service provider (docs/contracts.md §2): the switch's CSP. It
// claims the adapters the file lists and names them; it connects, and may disconnect, the
// connections the file gives by devargs. Control thread only.

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/config.hh"
#include "contracts/cm/connection_manager.hh"

namespace vcplane::cm {

// How a CSP creates and removes ports (port/hotplug in the daemon, fakes in unit tests).
struct port_ops {
    // Probe a device; the adapter, or nullopt with the error.
    std::function<std::optional<adapter>(const std::string& devargs, std::string* error)> probe;
    // Remove the device of an adapter (its port is stopped and unused by then).
    std::function<bool(const adapter&, std::string* error)> remove;
};

// The CSP of the config file. It claims the adapters the config lists (by device name or MAC)
// and gives them the configured names; those came up out of band (EAL probed them at start,
// or an operator hot-plugged them) and it refuses to disconnect them. Connections with
// `devargs` are different: the CM connects them through this CSP, which probes the device
// itself, and may disconnect them, which removes the device. One whose device was activated
// out of band instead (an operator attached it before vcplane connected it, or after it
// disconnected it) is claimed like the others, and is not this CSP's to disconnect (seed
// CmCspClaimConnection: an adapter it would create by connecting, activated out of band).
class config_csp : public csp {
public:
    // name_in_use: is a connection name taken already (by any CSP)?
    config_csp(const vcplane_config& cfg, std::function<bool(const std::string&)> name_in_use,
               port_ops ports);

    const char* name() const override { return "config"; }
    result claim_connection(const adapter& a, std::string& connection) override;
    result connect(const std::string& connection, adapter& out) override;
    result disconnect(const std::string& connection) override;

    const connection_config* find(const std::string& connection) const;

private:
    bool connected(const std::string& connection) const; // by this CSP
    const vcplane_config& cfg_;
    std::function<bool(const std::string&)> name_in_use_;
    port_ops ports_;
    std::vector<std::pair<std::string, adapter>> connected_; // by this CSP, not claimed
};

} // namespace vcplane::cm
