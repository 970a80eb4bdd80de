#include "control/switch_state.hh"

#include <cstring>
#include <fmt/format.h>
#include <stdexcept>

namespace vcplane {

switch_state::~switch_state() {
    for (auto& c : calls_) {
        party_set::destroy(c.circuit->parties);
        delete c.circuit;
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

size_t switch_state::party_count() const noexcept {
    size_t n = 0;
    for (const auto& c : calls_) {
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

const call_state& switch_state::make_call(const call_config& cfg) {
    const connection_state* in = find_connection(cfg.connection);
    if (in == nullptr) {
        throw std::invalid_argument(
            fmt::format("call '{}': no connection '{}'", cfg.name, cfg.connection));
    }
    const key_range range = key_range_for(in->media);
    if (cfg.key < range.min || cfg.key > range.max) {
        throw std::invalid_argument(fmt::format("call '{}': key {} out of range {}..{}", cfg.name,
                                                cfg.key, range.min, range.max));
    }
    if (in->entry->keys.get(cfg.key) != nullptr) {
        throw std::invalid_argument(fmt::format("call '{}': {} {} on '{}' is in use", cfg.name,
                                                in->media == media_kind::mpls ? "label" : "vid",
                                                cfg.key, in->name));
    }
    if (cfg.parties.empty()) {
        throw std::invalid_argument(fmt::format("call '{}': no party", cfg.name));
    }
    std::vector<party> parties;
    call_state state{cfg.name, cfg.connection, cfg.key, {}, nullptr};
    for (const auto& p : cfg.parties) {
        const connection_state* out = find_connection(p.connection);
        if (out == nullptr) {
            throw std::invalid_argument(fmt::format("call '{}' party '{}': no connection '{}'",
                                                    cfg.name, p.name, p.connection));
        }
        const key_range out_range = key_range_for(out->media);
        if (p.key < out_range.min || p.key > out_range.max) {
            throw std::invalid_argument(
                fmt::format("call '{}' party '{}': key {} out of range", cfg.name, p.name, p.key));
        }
        if (out->media != in->media) {
            // A label cannot become a VLAN tag by a header rewrite alone.
            throw std::invalid_argument(fmt::format(
                "call '{}' party '{}': egress '{}' is {} but ingress '{}' is {}", cfg.name, p.name,
                out->name, media_name(out->media), in->name, media_name(in->media)));
        }
        party wire{};
        std::memcpy(wire.dst_mac, p.next_hop.data(), 6);
        std::memcpy(wire.src_mac, out->mac.data(), 6);
        wire.out_key = p.key;
        wire.tx_port = out->port;
        parties.push_back(wire);
        state.parties.push_back(party_state{p.name, p.connection, p.key, p.next_hop});
    }
    party_set* set = party_set::create(parties);
    if (set == nullptr) {
        throw std::bad_alloc();
    }
    auto* circuit = new vc{cfg.key, next_vc_id_++, set};
    state.circuit = circuit;
    calls_.reserve(calls_.size() + 1);
    if (!in->entry->keys.publish(cfg.key, circuit)) {
        party_set::destroy(set);
        delete circuit;
        throw std::bad_alloc();
    }
    calls_.push_back(std::move(state));
    return calls_.back();
}

} // namespace vcplane
