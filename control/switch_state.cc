#include "control/switch_state.hh"

#include <algorithm>
#include <cstring>
#include <fmt/format.h>
#include <new>
#include <rte_cycles.h>
#include <stdexcept>

#include "base/alloc_faults.hh"

namespace vcplane {

const connection_state* switch_state::find_connection(const std::string& name) const noexcept {
    for (const auto& c : connections_) {
        if (c.name == name) {
            return &c;
        }
    }
    return nullptr;
}

void switch_state::set_link_up(const std::string& name, bool up) noexcept {
    for (auto& c : connections_) {
        if (c.name == name) {
            c.link_up = up;
        }
    }
}

const connection_state& switch_state::add_connection(const std::string& name,
                                                     const std::string& device, uint16_t port,
                                                     media_kind media, const mac_address& mac,
                                                     uint32_t mtu, uint64_t bandwidth_bps,
                                                     bool takes_chains) {
    if (find_connection(name) != nullptr) {
        throw std::invalid_argument(fmt::format("connection '{}' exists already", name));
    }
    if (port >= RTE_MAX_ETHPORTS || table_.by_port[port] != nullptr) {
        throw std::invalid_argument(fmt::format("port {} already carries a connection", device));
    }
    auto entry = std::make_unique<connection_entry>(media, port, mac.data());
    connections_.reserve(connections_.size() + 1);
    entries_.reserve(entries_.size() + 1);
    connections_.push_back(connection_state{name, device, port, media, mac, mtu, bandwidth_bps,
                                            entry.get(), takes_chains});
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

std::optional<table_error> switch_state::check_party(const connection_state& in,
                                                     const connection_state* out,
                                                     const party_spec& p,
                                                     const call_encapsulation& encap,
                                                     checked_party& into) const {
    using callmgmt::status;
    if (out == nullptr) {
        return table_error{status::invalid_parameter,
                           fmt::format("party '{}': no connection '{}'", p.name, p.connection)};
    }
    const party_check c = check_party_spec(in.media, out->media, p.key, p.next_hop, encap);
    switch (c.problem) {
    case party_problem::none: into = {p, c.derived.action}; return std::nullopt;
    case party_problem::key_on_port:
        return table_error{status::invalid_parameter,
                           fmt::format("party '{}': '{}' is a port connection, which takes no key "
                                       "(got {})",
                                       p.name, out->name, p.key)};
    case party_problem::key_out_of_range: {
        const key_range r = key_range_for(out->media);
        return table_error{status::invalid_parameter,
                           fmt::format("party '{}': {} {}{} is out of range ({}..{}{})", p.name,
                                       key_name(out->media), p.key,
                                       p.key == 0 ? " (or none given)" : "", r.min, r.max,
                                       out->media == media_kind::mpls ? ", or 3 to pop" : "")};
    }
    case party_problem::no_next_hop:
        return table_error{status::invalid_parameter,
                           fmt::format("party '{}': 00:00:00:00:00:00 (or none given) is not a "
                                       "next hop",
                                       p.name)};
    case party_problem::next_hop_unused:
        return table_error{status::invalid_parameter,
                           fmt::format("party '{}': its copies are the pseudowire's inner frames, "
                                       "which keep their own addresses: give no next hop",
                                       p.name)};
    case party_problem::action:
        return table_error{status::not_supported,
                           fmt::format("party '{}' ({} to {} '{}'): {}", p.name,
                                       media_name(in.media), media_name(out->media), out->name,
                                       action_problem_text(c.derived.problem))};
    }
    return std::nullopt;
}

party switch_state::resolve(const connection_state& out, const checked_party& p, uint32_t slot,
                            const call_encapsulation& encap) {
    party w{};
    std::memcpy(w.dst_mac, p.spec.next_hop.data(), 6);
    std::memcpy(w.src_mac, out.mac.data(), 6);
    w.out_key = p.spec.key;
    w.tx_port = out.port;
    w.takes_chains = out.takes_chains;
    w.action_code = uint8_t(p.action);
    w.control_word = encap.control_word;
    w.ttl_pipe = encap.ttl == ttl_model::pipe;
    w.stats_slot = slot;
    return w;
}

party_set* switch_state::build_parties(std::span<const checked_party> checked,
                                       std::span<const uint32_t> slots, table_error* error,
                                       const call_encapsulation& encap) const {
    if (checked.empty() || checked.size() > max_parties_per_call) {
        *error = {callmgmt::status::resources, fmt::format("{} parties (a call has 1..{})",
                                                           checked.size(), max_parties_per_call)};
        return nullptr;
    }
    std::vector<party> parties;
    parties.reserve(checked.size());
    for (const checked_party& p : checked) {
        const connection_state* out = find_connection(p.spec.connection);
        if (out == nullptr) {
            *error = {
                callmgmt::status::invalid_parameter,
                fmt::format("party '{}': no connection '{}'", p.spec.name, p.spec.connection)};
            return nullptr;
        }
        const size_t i = parties.size();
        parties.push_back(
            resolve(*out, p, i < slots.size() ? slots[i] : counter_slots::remainder, encap));
    }
    party_set* set = party_set::create(parties);
    if (set == nullptr) {
        *error = {callmgmt::status::resources, "out of memory for the party array"};
    }
    return set;
}

party_set* switch_state::build_parties(const connection_state& in,
                                       const std::vector<party_spec>& specs,
                                       std::span<const uint32_t> slots, table_error* error,
                                       const call_encapsulation& encap) const {
    std::vector<checked_party> checked(specs.size());
    for (size_t i = 0; i < specs.size(); ++i) {
        if (auto e = check_party(in, find_connection(specs[i].connection), specs[i], encap,
                                 checked[i])) {
            *error = *e;
            return nullptr;
        }
    }
    return build_parties(checked, slots, error, encap);
}

party_set* switch_state::parties_with(const party_set& current, const connection_state& out,
                                      const checked_party& p, uint32_t slot, table_error* error,
                                      const call_encapsulation& encap) const {
    if (current.size() >= max_parties_per_call) {
        *error = {
            callmgmt::status::resources,
            fmt::format("{} parties (a call has 1..{})", current.size() + 1, max_parties_per_call)};
        return nullptr;
    }
    const party w = resolve(out, p, slot, encap);
    party_set* set = party_set::create_changed(current, &w, current.size());
    if (set == nullptr) {
        *error = {callmgmt::status::resources, "out of memory for the party array"};
    }
    return set;
}

party_set* switch_state::parties_without(const party_set& current, uint32_t index,
                                         table_error* error) const {
    party_set* set = party_set::create_changed(current, nullptr, index);
    if (set == nullptr) {
        *error = {callmgmt::status::resources, "out of memory for the party array"};
    }
    return set;
}

vc* switch_state::new_vc(const connection_state& in, uint32_t key, uint32_t stats_slot,
                         party_set* parties, const traffic_contract& flow, table_error* error) {
    // The meter first: vc::create takes the party array over, so once it succeeds nothing
    // may fail (a failed new_vc leaves the array to the caller).
    std::unique_ptr<vc_meter> meter;
    if (flow.sustained_rate != 0) {
        if (rte_get_tsc_hz() == 0) {
            // Meters count in TSC cycles, known once EAL runs.
            *error = {callmgmt::status::not_supported, "traffic contracts need a running EAL"};
            return nullptr;
        }
        // Each worker meters the share of the VC's traffic it receives against the full
        // contract: with one RX queue per worker per port, a VC's traffic arrives on one
        // worker unless RSS spreads it (documented in the README).
        rte_meter_trtcm_params params{};
        params.cir = flow.sustained_rate;
        params.pir = flow.peak_rate != 0 ? flow.peak_rate : flow.sustained_rate;
        params.cbs = flow.burst;
        params.pbs = flow.burst;
        if (!alloc_faults::fails(alloc_faults::site::meter)) {
            meter.reset(new (std::nothrow) vc_meter{});
        }
        if (meter != nullptr) {
            meter->per_worker.reset(new (std::nothrow) vc_worker_state[workers_]);
        }
        if (meter == nullptr || meter->per_worker == nullptr ||
            rte_meter_trtcm_profile_config(&meter->profile, &params) != 0) {
            *error = {callmgmt::status::resources, "cannot configure the traffic-contract meter"};
            return nullptr;
        }
        for (unsigned i = 0; i < workers_; ++i) {
            rte_meter_trtcm_config(&meter->per_worker[i].meter, &meter->profile);
        }
    }
    vc* v = vc::create(in.entry->keys, key, stats_slot, parties);
    if (v == nullptr) {
        *error = {callmgmt::status::resources, "out of memory for the VC"};
        return nullptr;
    }
    ++live_vcs_;
    v->meter = meter.release();
    v->fair = flow.fair;
    return v;
}

switch_state::switch_state(unsigned workers, const metrics_config& series)
    : workers_(workers)
    , vc_slots_(workers, series.per_vc, series.max_series)
    , party_slots_(workers, series.per_party, series.max_series) {}

void switch_state::release_retired_slots() noexcept {
    for (uint32_t s : retired_vc_slots_) {
        vc_slots_.release(s);
    }
    for (uint32_t s : retired_party_slots_) {
        party_slots_.release(s);
    }
    retired_vc_slots_.clear();
    retired_party_slots_.clear();
}

bool switch_state::book(const std::string& connection, uint64_t bps) {
    const connection_state* c = find_connection(connection);
    if (c == nullptr) {
        return false;
    }
    if (bps == 0) {
        return true; // a call without a traffic contract books nothing: no entry to look up
    }
    uint64_t& booked = booked_bps_[connection];
    if (!admits(c->bandwidth_bps, booked, bps)) {
        return false;
    }
    booked += bps;
    return true;
}

void switch_state::release(const std::string& connection, uint64_t bps) noexcept {
    if (bps == 0) {
        return;
    }
    auto it = booked_bps_.find(connection);
    if (it != booked_bps_.end()) {
        it->second -= std::min(it->second, bps);
    }
}

uint64_t switch_state::booked(const std::string& connection) const noexcept {
    auto it = booked_bps_.find(connection);
    return it == booked_bps_.end() ? 0 : it->second;
}

void switch_state::free_vc(vc* v) noexcept {
    if (v == nullptr) {
        return;
    }
    --live_vcs_;
    vc::destroy(v);
}

} // namespace vcplane
