#include "control/config_csp.hh"

#include <algorithm>

#include "base/log.hh"

namespace vcplane::cm {

config_csp::config_csp(const vcplane_config& cfg, std::function<bool(const std::string&)> in_use,
                       port_ops ports)
    : cfg_(cfg)
    , name_in_use_(std::move(in_use))
    , ports_(std::move(ports)) {}

const connection_config* config_csp::find(const std::string& connection) const {
    return cfg_.find_connection(connection);
}

result config_csp::claim_connection(const adapter& a, std::string& connection) {
    if (a.device.empty()) {
        return result::invalid_parameter;
    }
    for (const auto& c : cfg_.connections) {
        const bool mine = c.mac ? *c.mac == a.mac : c.device == a.device;
        if (!mine) {
            continue;
        }
        if (!c.devargs.empty() && connected(c.name)) {
            // Ours to connect, not to claim: it appeared because we probed it.
            return result::invalid_connection;
        }
        // An adapter the file lists, activated out of band (docs/contracts.md §2.5): claimed
        // under its configured name, even one this CSP would create by connecting; such a
        // connection is not this CSP's to disconnect.
        if (name_in_use_(c.name)) {
            return result::connection_already_exists;
        }
        connection = c.name;
        return result::success;
    }
    return result::invalid_connection; // not one of the config's
}

result config_csp::connect(const std::string& connection, adapter& out) {
    const connection_config* c = find(connection);
    if (c == nullptr) {
        return result::connection_does_not_exist;
    }
    if (c->devargs.empty()) {
        // Its port comes up out of band and is claimed; this CSP cannot create it.
        return result::not_supported;
    }
    if (!ports_.probe) {
        return result::unexpected;
    }
    std::string error;
    auto a = ports_.probe(c->devargs, &error);
    if (!a) {
        log::error("{}: {}", c->device_origin.where(), error);
        return result::unexpected;
    }
    out = *a;
    connected_.emplace_back(connection, *a);
    return result::success;
}

bool config_csp::connected(const std::string& connection) const {
    return std::any_of(connected_.begin(), connected_.end(),
                       [&](const auto& e) { return e.first == connection; });
}

result config_csp::disconnect(const std::string& connection) {
    if (find(connection) == nullptr) {
        return result::connection_does_not_exist;
    }
    auto it = std::find_if(connected_.begin(), connected_.end(),
                           [&](const auto& e) { return e.first == connection; });
    if (it == connected_.end()) {
        // Claimed out of band: the port's lifetime belongs to whoever brought it up.
        return result::not_supported;
    }
    std::string error;
    const bool ok = !ports_.remove || ports_.remove(it->second, &error);
    connected_.erase(it);
    if (!ok) {
        log::error("connection '{}': removing its device failed: {}", connection, error);
        return result::unexpected;
    }
    return result::success;
}

} // namespace vcplane::cm
