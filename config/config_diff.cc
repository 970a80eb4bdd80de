#include "config/config_diff.hh"

#include <algorithm>
#include <fmt/format.h>
#include <map>

namespace vcplane {

const char* reload_op_name(reload_op op) {
    return name_of(op);
}

std::string reload_step::text() const {
    if (!is_call_op(op)) {
        return fmt::format("{} service '{}': {}", reload_op_name(op), call, why);
    }
    const std::string what = party.empty() ? fmt::format("call '{}'", call)
                                           : fmt::format("party '{}' of call '{}'", party, call);
    return fmt::format("{} {}: {}", reload_op_name(op), what, why);
}

namespace {

template <typename T>
std::string listed(const std::vector<T>& v) {
    return fmt::format("[{}]", fmt::join(v, ", "));
}

// Adds "KEY: OLD -> NEW" to `out` when the two differ.
template <typename T>
void compare(std::vector<std::string>& out, const std::string& key, const T& was, const T& is) {
    if (!(was == is)) {
        out.push_back(fmt::format("{}: {} -> {}", key, was, is));
    }
}
template <typename T>
void compare(std::vector<std::string>& out, const std::string& key, const std::vector<T>& was,
             const std::vector<T>& is) {
    if (was != is) {
        out.push_back(fmt::format("{}: {} -> {}", key, listed(was), listed(is)));
    }
}

std::string mac_text(const std::optional<mac_address>& m) {
    return m ? format_mac(*m) : std::string("(none)");
}

void diff_fixed(const vcplane_config& a, const vcplane_config& b, std::vector<std::string>& out) {
    compare(out, "eal.lcores", a.eal.lcores, b.eal.lcores);
    compare(out, "eal.memory_mb", a.eal.memory_mb, b.eal.memory_mb);
    compare(out, "eal.no_huge", a.eal.no_huge, b.eal.no_huge);
    compare(out, "eal.vdevs", a.eal.vdevs, b.eal.vdevs);
    compare(out, "eal.pci_allow", a.eal.pci_allow, b.eal.pci_allow);
    compare(out, "eal.file_prefix", a.eal.file_prefix, b.eal.file_prefix);
    compare(out, "eal.log_level", a.eal.log_level, b.eal.log_level);
    for (const auto& c : a.connections) {
        const connection_config* n = b.find_connection(c.name);
        const std::string key = "connections." + c.name;
        if (n == nullptr) {
            out.push_back(fmt::format("{}: removed", key));
            continue;
        }
        compare(out, key + ".device", c.device, n->device);
        compare(out, key + ".mac", mac_text(c.mac), mac_text(n->mac));
        compare(out, key + ".devargs", c.devargs, n->devargs);
        compare(out, key + ".media", std::string(media_name(c.media)),
                std::string(media_name(n->media)));
        compare(out, key + ".mtu", c.mtu, n->mtu);
        compare(out, key + ".bandwidth_bps", c.bandwidth_bps, n->bandwidth_bps);
        compare(out, key + ".rx_descriptors", c.rx_descriptors, n->rx_descriptors);
        compare(out, key + ".tx_descriptors", c.tx_descriptors, n->tx_descriptors);
    }
    for (const auto& c : b.connections) {
        if (a.find_connection(c.name) == nullptr) {
            out.push_back(fmt::format("connections.{}: new", c.name));
        }
    }
    compare(out, "metrics.enabled", a.metrics.enabled, b.metrics.enabled);
    compare(out, "metrics.listen", a.metrics.listen, b.metrics.listen);
    compare(out, "metrics.per_vc", a.metrics.per_vc, b.metrics.per_vc);
    compare(out, "metrics.per_party", a.metrics.per_party, b.metrics.per_party);
    compare(out, "metrics.max_series", a.metrics.max_series, b.metrics.max_series);
    compare(out, "metrics.forwarding_latency", a.metrics.forwarding_latency,
            b.metrics.forwarding_latency);
    compare(out, "control.enabled", a.control.enabled, b.control.enabled);
    compare(out, "control.socket", a.control.socket, b.control.socket);
    compare(out, "control.owner", a.control.owner, b.control.owner);
    compare(out, "control.group", a.control.group, b.control.group);
    compare(out, "control.mode", fmt::format("{:04o}", a.control.mode),
            fmt::format("{:04o}", b.control.mode));
    compare(out, "control.allowed_users", a.control.allowed_users, b.control.allowed_users);
    compare(out, "control.allowed_groups", a.control.allowed_groups, b.control.allowed_groups);
    compare(out, "control.max_sessions", a.control.max_sessions, b.control.max_sessions);
    compare(out, "control.max_message_bytes", a.control.max_message_bytes,
            b.control.max_message_bytes);
    compare(out, "control.max_queued_replies", a.control.max_queued_replies,
            b.control.max_queued_replies);
}

std::string party_change(const party_config& a, const party_config& b) {
    std::vector<std::string> what;
    if (a.connection != b.connection) {
        what.push_back(fmt::format("connection '{}' -> '{}'", a.connection, b.connection));
    }
    if (a.key != b.key) {
        what.push_back(fmt::format("key {} -> {}", a.key, b.key));
    }
    if (a.next_hop != b.next_hop) {
        what.push_back(
            fmt::format("next_hop {} -> {}", format_mac(a.next_hop), format_mac(b.next_hop)));
    }
    return fmt::format("{}", fmt::join(what, ", "));
}

std::string encap_text(const call_encapsulation& e) {
    return fmt::format("payload {}{}, ttl {}", name_of(e.payload),
                       e.control_word ? " with control word" : "", name_of(e.ttl));
}

std::string contract_text(const traffic_contract& c) {
    if (c.sustained_rate == 0) {
        return "no contract";
    }
    std::string t = fmt::format("sustained {} B/s", c.sustained_rate);
    if (c.peak_rate != 0) {
        t += fmt::format(", peak {} B/s", c.peak_rate);
    }
    if (c.burst != 0) {
        t += fmt::format(", burst {} B", c.burst);
    }
    return t;
}

// The steps of a reload, collected per kind and concatenated in the order the header
// documents.
struct step_lists {
    std::vector<reload_step> closes, drops, qos, adds, makes, services;
};

// Why a call must be closed and made again rather than changed in place; empty when it can be
// changed in place.
std::string why_remake(const call_config& old, const call_config& now) {
    if (old.connection != now.connection) {
        return fmt::format("connection '{}' -> '{}'", old.connection, now.connection);
    }
    if (old.key != now.key) {
        return fmt::format("key {} -> {}", old.key, now.key);
    }
    if (old.encap != now.encap) {
        // Every party's action follows from it: the parties are built anew.
        return fmt::format("encapsulation {} -> {}", encap_text(old.encap), encap_text(now.encap));
    }
    return {};
}

// A call both files name: remade, or changed party by party and in its contract.
void diff_call(const std::string& name, const call_config& old, const call_config& now,
               step_lists& out, std::vector<std::string>& unchanged) {
    std::string remake = why_remake(old, now);
    std::vector<reload_step> call_drops, call_adds;
    size_t kept = 0;
    for (const auto& p : old.parties) {
        const party_config* n = now.find_party(p.name);
        if (n == nullptr) {
            call_drops.push_back({reload_op::drop_party, name, p.name, "removed"});
        } else if (!same_party(p, *n)) {
            const std::string why = party_change(p, *n);
            call_drops.push_back({reload_op::drop_party, name, p.name, why});
            call_adds.push_back({reload_op::add_party, name, p.name, why});
        } else {
            ++kept;
        }
    }
    for (const auto& p : now.parties) {
        if (old.find_party(p.name) == nullptr) {
            call_adds.push_back({reload_op::add_party, name, p.name, "new"});
        }
    }
    if (remake.empty() && kept == 0 && !call_drops.empty()) {
        // Dropping them all would leave the call without a party, which no call may be.
        remake = "no party stays unchanged";
    }
    if (!remake.empty()) {
        out.closes.push_back({reload_op::close_call, name, "", remake + " (made again)"});
        out.makes.push_back({reload_op::make_call, name, "", remake});
        return;
    }
    if (old.contract != now.contract) {
        out.qos.push_back(
            {reload_op::modify_qos, name, "",
             fmt::format("{} -> {}", contract_text(old.contract), contract_text(now.contract))});
    }
    if (call_drops.empty() && call_adds.empty() && old.contract == now.contract) {
        unchanged.push_back(name);
    }
    out.drops.insert(out.drops.end(), call_drops.begin(), call_drops.end());
    out.adds.insert(out.adds.end(), call_adds.begin(), call_adds.end());
}

void diff_services(const vcplane_config& running, const vcplane_config& next,
                   std::vector<reload_step>& services) {
    for (const auto& o : running.services) {
        const auto it = std::find_if(next.services.begin(), next.services.end(),
                                     [&](const auto& n) { return n.name == o.name; });
        if (it == next.services.end()) {
            services.push_back({reload_op::delete_service, o.name, "", "removed from the file"});
        } else if (it->addresses != o.addresses || it->comment != o.comment) {
            services.push_back(
                {reload_op::set_service, o.name, "",
                 fmt::format("addresses {} -> {}", listed(o.addresses), listed(it->addresses))});
        }
    }
    for (const auto& n : next.services) {
        if (std::none_of(running.services.begin(), running.services.end(),
                         [&](const auto& o) { return o.name == n.name; })) {
            services.push_back({reload_op::set_service, n.name, "", "new"});
        }
    }
}

} // namespace

reload_plan diff_configs(const vcplane_config& running, const vcplane_config& next) {
    reload_plan plan;
    diff_fixed(running, next, plan.restart_required);

    std::map<std::string, const call_config*> was, is;
    for (const auto& c : running.calls) {
        was[c.name] = &c;
    }
    for (const auto& c : next.calls) {
        is[c.name] = &c;
    }
    step_lists steps;
    for (const auto& [name, old] : was) {
        auto it = is.find(name);
        if (it == is.end()) {
            steps.closes.push_back({reload_op::close_call, name, "", "removed from the file"});
        } else {
            diff_call(name, *old, *it->second, steps, plan.unchanged);
        }
    }
    for (const auto& [name, c] : is) {
        if (was.count(name) == 0) {
            steps.makes.push_back({reload_op::make_call, name, "",
                                   fmt::format("new ({} part{})", c->parties.size(),
                                               c->parties.size() == 1 ? "y" : "ies")});
        }
    }
    diff_services(running, next, steps.services);
    for (auto* kind :
         {&steps.closes, &steps.drops, &steps.qos, &steps.adds, &steps.makes, &steps.services}) {
        plan.steps.insert(plan.steps.end(), kind->begin(), kind->end());
    }
    return plan;
}

bool same_party(const party_spec& a, const party_spec& b) {
    return a.connection == b.connection && a.key == b.key && a.next_hop == b.next_hop;
}

} // namespace vcplane
