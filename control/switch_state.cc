#include "control/switch_state.hh"

#include <algorithm>
#include <cstring>
#include <fmt/format.h>
#include <stdexcept>

namespace vcplane {

const char* callmgmt::status_name(status s) {
    switch (s) {
    case status::success: return "SUCCESS";
    case status::pending: return "PENDING";
    case status::not_accepted: return "NOT_ACCEPTED";
    case status::failure: return "FAILURE";
    case status::invalid_handle: return "INVALID_HANDLE";
    case status::resources: return "RESOURCES";
    case status::not_supported: return "NOT_SUPPORTED";
    case status::nointerface: return "NOINTERFACE";
    case status::closing: return "CLOSING";
    case status::invalid_data: return "INVALID_DATA";
    }
    return "UNKNOWN";
}

void retired_call::free() noexcept {
    if (circuit != nullptr) {
        party_set::destroy(circuit->parties);
        delete circuit;
    }
    party_set::destroy(parties);
    circuit = nullptr;
    parties = nullptr;
}

switch_state::~switch_state() {
    for (auto& [id, c] : calls_) {
        retired_call{c.circuit, nullptr}.free();
    }
    // connection_entry objects (and their key tables) go with entries_.
}

const connection_state* switch_state::find_connection(const std::string& name) const noexcept {
    for (const auto& c : connections_) {
        if (c.name == name) {
            return &c;
        }
    }
    return nullptr;
}

const call_state* switch_state::find_call(callmgmt::call_handle id) const noexcept {
    auto it = calls_.find(id);
    return it == calls_.end() ? nullptr : &it->second;
}

const call_state* switch_state::find_call(const std::string& name) const noexcept {
    for (const auto& [id, c] : calls_) {
        if (c.name == name) {
            return &c;
        }
    }
    return nullptr;
}

size_t switch_state::party_count() const noexcept {
    size_t n = 0;
    for (const auto& [id, c] : calls_) {
        n += c.parties.size();
    }
    return n;
}

const connection_state& switch_state::add_connection(const std::string& name,
                                                     const std::string& device, uint16_t port,
                                                     media_kind media, const mac_address& mac,
                                                     uint32_t mtu) {
    if (find_connection(name) != nullptr) {
        throw std::invalid_argument(fmt::format("connection '{}' exists already", name));
    }
    if (port >= RTE_MAX_ETHPORTS || table_.by_port[port] != nullptr) {
        throw std::invalid_argument(fmt::format("port {} already carries a connection", device));
    }
    auto entry = std::make_unique<connection_entry>(media, port, mac.data());
    connections_.reserve(connections_.size() + 1);
    entries_.reserve(entries_.size() + 1);
    connections_.push_back(connection_state{name, device, port, media, mac, mtu, entry.get()});
    rcu_assign_pointer(table_.by_port[port], entry.get());
    entries_.push_back(std::move(entry));
    return connections_.back();
}

std::unique_ptr<connection_entry> switch_state::remove_connection(const std::string& name) {
    auto it = std::find_if(connections_.begin(), connections_.end(),
                           [&](const auto& c) { return c.name == name; });
    if (it == connections_.end()) {
        return nullptr;
    }
    rcu_assign_pointer(table_.by_port[it->port], nullptr);
    auto e = std::find_if(entries_.begin(), entries_.end(),
                          [&](const auto& p) { return p.get() == it->entry; });
    std::unique_ptr<connection_entry> out = std::move(*e);
    entries_.erase(e);
    connections_.erase(it);
    return out;
}

party_set* switch_state::build_parties(const connection_state& in, const std::string& call,
                                       const std::vector<callmgmt::party_spec>& specs) const {
    if (specs.empty()) {
        throw std::invalid_argument(fmt::format("call '{}': no party", call));
    }
    if (specs.size() > max_parties_per_call) {
        throw std::invalid_argument(fmt::format("call '{}': {} parties, at most {}", call,
                                                specs.size(), max_parties_per_call));
    }
    std::vector<party> parties;
    for (const auto& p : specs) {
        const connection_state* out = find_connection(p.connection);
        if (out == nullptr) {
            throw std::invalid_argument(fmt::format("call '{}' party '{}': no connection '{}'",
                                                    call, p.name, p.connection));
        }
        const key_range r = key_range_for(out->media);
        if (p.key < r.min || p.key > r.max) {
            throw std::invalid_argument(
                fmt::format("call '{}' party '{}': key {} out of range", call, p.name, p.key));
        }
        if (out->media != in.media) {
            // A label cannot become a VLAN tag by a header rewrite alone.
            throw std::invalid_argument(fmt::format(
                "call '{}' party '{}': egress '{}' is {} but ingress '{}' is {}", call, p.name,
                out->name, media_name(out->media), in.name, media_name(in.media)));
        }
        party w{};
        std::memcpy(w.dst_mac, p.next_hop.data(), 6);
        std::memcpy(w.src_mac, out->mac.data(), 6);
        w.out_key = p.key;
        w.tx_port = out->port;
        parties.push_back(w);
    }
    party_set* set = party_set::create(parties);
    if (set == nullptr) {
        throw std::bad_alloc();
    }
    return set;
}

const call_state& switch_state::make_call(const std::string& ingress,
                                          const callmgmt::call_spec& spec) {
    const connection_state* in = find_connection(ingress);
    if (in == nullptr) {
        throw std::invalid_argument(
            fmt::format("call '{}': no connection '{}'", spec.name, ingress));
    }
    if (find_call(spec.name) != nullptr) {
        throw std::invalid_argument(fmt::format("call '{}' exists already", spec.name));
    }
    const key_range range = key_range_for(in->media);
    if (spec.key < range.min || spec.key > range.max) {
        throw std::invalid_argument(fmt::format("call '{}': key {} out of range {}..{}", spec.name,
                                                spec.key, range.min, range.max));
    }
    if (in->entry->keys.get(spec.key) != nullptr) {
        throw std::invalid_argument(fmt::format("call '{}': {} {} on '{}' is in use", spec.name,
                                                in->media == media_kind::mpls ? "label" : "vid",
                                                spec.key, in->name));
    }
    party_set* set = build_parties(*in, spec.name, spec.parties);
    auto* circuit = new vc{spec.key, next_vc_id_++, set};
    if (!in->entry->keys.publish(spec.key, circuit)) {
        retired_call{circuit, nullptr}.free();
        throw std::bad_alloc();
    }
    const callmgmt::call_handle id = next_call_++;
    auto [it, fresh] =
        calls_.emplace(id, call_state{id, spec.name, in->name, spec.key, spec.parties, circuit});
    return it->second;
}

const call_state& switch_state::make_call(const call_config& cfg) {
    callmgmt::call_spec spec{cfg.name, cfg.key, {}};
    for (const auto& p : cfg.parties) {
        spec.parties.push_back(callmgmt::party_spec{p.name, p.connection, p.key, p.next_hop});
    }
    return make_call(cfg.connection, spec);
}

retired_call switch_state::unpublish_call(callmgmt::call_handle id) {
    auto it = calls_.find(id);
    if (it == calls_.end()) {
        return {};
    }
    const connection_state* in = find_connection(it->second.connection);
    if (in != nullptr) {
        in->entry->keys.unpublish(it->second.key);
    }
    retired_call r{it->second.circuit, nullptr};
    calls_.erase(it);
    return r;
}

retired_call switch_state::replace_parties(callmgmt::call_handle id,
                                           std::vector<callmgmt::party_spec> parties) {
    auto it = calls_.find(id);
    if (it == calls_.end()) {
        return {};
    }
    const connection_state* in = find_connection(it->second.connection);
    party_set* next = build_parties(*in, it->second.name, parties);
    party_set* old = it->second.circuit->parties;
    rcu_assign_pointer(it->second.circuit->parties, next);
    it->second.parties = std::move(parties);
    return retired_call{nullptr, old};
}

} // namespace vcplane
