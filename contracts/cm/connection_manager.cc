#include "contracts/cm/connection_manager.hh"

#include "base/contract_stats.hh"

#include <algorithm>
#include <fmt/format.h>

#include "base/log.hh"

namespace vcplane::cm {

const char* result_name(result r) {
    return name_of(r);
}

const char* state_name(state s) {
    return name_of(s);
}

const connection* connection_manager::find(const std::string& name) const {
    for (const auto& c : connections_) {
        if (c.name == name) {
            return &c;
        }
    }
    return nullptr;
}

const connection* connection_manager::find_by_device(const std::string& device) const {
    for (const auto& c : connections_) {
        if (c.port.device == device) {
            return &c;
        }
    }
    return nullptr;
}

const connection* connection_manager::adapter_arrived(const adapter& a) {
    if (find_by_device(a.device) != nullptr) {
        return find_by_device(a.device); // managed already
    }
    std::erase_if(unmanaged_, [&](const auto& u) { return u.port.device == a.device; });
    std::string reasons;
    for (csp* c : csps_) {
        std::string name;
        const result r = c->claim_connection(a, name);
        contract_stats::process().count("cm", "claim_connection", result_name(r));
        if (r == result::success) {
            if (name.empty() || find(name) != nullptr) {
                // A CSP that hands out an empty or taken name has not really claimed it.
                reasons += fmt::format("{}{}: claimed it as '{}', which is unusable",
                                       reasons.empty() ? "" : "; ", c->name(), name);
                continue;
            }
            connections_.push_back(connection{name, a, state::connected, c, true});
            log::notice("port {} ({}): claimed by the {} CSP as connection '{}'", a.device,
                        format_mac(a.mac), c->name(), name);
            const connection made = connections_.back();
            const std::string error = listener_.up ? listener_.up(made) : std::string();
            if (!error.empty()) {
                std::erase_if(connections_, [&](const auto& x) { return x.name == name; });
                unmanaged_.push_back(
                    unmanaged_adapter{a, fmt::format("claimed by {} as '{}' but not started: {}",
                                                     c->name(), name, error)});
                return nullptr;
            }
            return find(name);
        }
        // Every non-success means "not claimed, ask the next CSP" (contracts.md §2.5).
        reasons += fmt::format("{}{}: {}", reasons.empty() ? "" : "; ", c->name(), result_name(r));
    }
    if (csps_.empty()) {
        reasons = "no connection service provider is registered";
    }
    unmanaged_.push_back(unmanaged_adapter{a, reasons});
    log::notice("port {} ({}): unmanaged ({})", a.device, format_mac(a.mac), reasons);
    return nullptr;
}

void connection_manager::adapter_removed(const std::string& device) {
    std::erase_if(unmanaged_, [&](const auto& u) { return u.port.device == device; });
    auto it = std::find_if(connections_.begin(), connections_.end(),
                           [&](const auto& c) { return c.port.device == device; });
    if (it == connections_.end()) {
        return;
    }
    const connection gone = *it;
    connections_.erase(it);
    log::notice("connection '{}' ({}): adapter removed", gone.name, device);
    if (listener_.down) {
        listener_.down(gone, true);
    }
}

void connection_manager::adapter_link(const std::string& device, bool up) {
    for (auto& c : connections_) {
        if (c.port.device != device) {
            continue;
        }
        const state next = up ? state::connected : state::disconnected_unavailable;
        if (c.st == next) {
            return;
        }
        c.st = next;
        log::notice("connection '{}': link {}", c.name, up ? "up" : "down");
        if (listener_.link) {
            listener_.link(c);
        }
        return;
    }
}

result connection_manager::connect(const std::string& name) {
    return counted("connect", connect_uncounted(name));
}

result connection_manager::disconnect(const std::string& name) {
    return counted("disconnect", disconnect_uncounted(name));
}

result connection_manager::counted(const char* op, result r) {
    contract_stats::process().count("cm", op, result_name(r));
    return r;
}

result connection_manager::connect_uncounted(const std::string& name) {
    if (find(name) != nullptr) {
        return result::connection_already_exists;
    }
    result last = result::connection_does_not_exist;
    for (csp* c : csps_) {
        adapter a;
        const result r = c->connect(name, a);
        if (r == result::success) {
            std::erase_if(unmanaged_, [&](const auto& u) { return u.port.device == a.device; });
            connections_.push_back(connection{name, a, state::connected, c, false});
            log::notice("connection '{}' ({}): connected by the {} CSP", name, a.device, c->name());
            const connection made = connections_.back();
            const std::string error = listener_.up ? listener_.up(made) : std::string();
            if (!error.empty()) {
                std::erase_if(connections_, [&](const auto& x) { return x.name == name; });
                unmanaged_.push_back(
                    unmanaged_adapter{a, fmt::format("connected by {} as '{}' but not started: {}",
                                                     c->name(), name, error)});
                return result::unexpected;
            }
            return r;
        }
        if (r != result::connection_does_not_exist && r != result::invalid_connection) {
            last = r;
        }
    }
    return last;
}

result connection_manager::disconnect_uncounted(const std::string& name) {
    auto it = std::find_if(connections_.begin(), connections_.end(),
                           [&](const auto& c) { return c.name == name; });
    if (it == connections_.end()) {
        return result::connection_does_not_exist;
    }
    if (it->out_of_band) {
        // The CSP refuses for it; asking costs nothing and keeps the contract visible.
        const result r = it->owner->disconnect(name);
        if (r == result::not_supported) {
            return r;
        }
    }
    it->st = state::disconnecting;
    const connection gone = *it;
    // Tear down what runs on it first: after disconnect returns the port must be unused.
    if (listener_.down) {
        listener_.down(gone, false);
    }
    const result r = gone.out_of_band ? result::success : gone.owner->disconnect(name);
    std::erase_if(connections_, [&](const auto& c) { return c.name == name; });
    log::notice("connection '{}': disconnected ({})", name, result_name(r));
    return r;
}

} // namespace vcplane::cm
