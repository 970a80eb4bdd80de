#pragma once
// The forwarding tables as the control thread builds them, and the connections they hang off.
// The control thread is the only writer (dataplane/rcu.hh). Call managers own the VCs; this
// class gives them the building blocks: party arrays, VCs with their meters, publishing.
//
// Removing anything is two steps: unpublish now (what the workers see changes at once), free
// later, after a grace period.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "config/config.hh"
#include "contracts/callmgmt/call_management.hh"
#include "dataplane/counter_slots.hh"
#include "dataplane/tables.hh"

namespace vcplane {

struct connection_state {
    std::string name;
    std::string device;
    uint16_t port;
    media_kind media;
    mac_address mac;
    uint32_t mtu;
    uint64_t bandwidth_bps;  // 0: not stated, no admission control
    connection_entry* entry; // what the workers see for this port
    bool takes_chains;       // multi-segment TX: replicas may be header + shared payload
    bool link_up = true;     // as the Connection Manager last heard
};

// A request the tables cannot take, with the contract status that says why.
struct table_error {
    callmgmt::status status;
    std::string why;
};

class switch_state {
public:
    // series: whether the workers count per VC and per party, and how many slots each has.
    explicit switch_state(unsigned workers = 1, const metrics_config& series = {});
    ~switch_state() = default; // connection entries; VCs belong to their owners
    switch_state(const switch_state&) = delete;
    switch_state& operator=(const switch_state&) = delete;

    forwarding_table& table() noexcept { return table_; }
    const forwarding_table& table() const noexcept { return table_; }
    unsigned workers() const noexcept { return workers_; }

    // Publish a claimed port as a connection. Throws std::invalid_argument on a clash.
    const connection_state& add_connection(const std::string& name, const std::string& device,
                                           uint16_t port, media_kind media, const mac_address& mac,
                                           uint32_t mtu, uint64_t bandwidth_bps = 0,
                                           bool takes_chains = true);
    // Unpublish; the entry is freed by the caller after a grace period. VCs on it must be
    // unpublished already.
    std::unique_ptr<connection_entry> remove_connection(const std::string& name);
    const connection_state* find_connection(const std::string& name) const noexcept;
    void set_link_up(const std::string& name, bool up) noexcept;
    const std::vector<connection_state>& connections() const noexcept { return connections_; }

    // Checks a party against its egress connection `out` (find_connection(p.connection), so
    // nullptr when there is none) and the call's ingress media and encapsulation
    // (check_party_spec, vocab/call_vocabulary.hh); on success `into` is the checked party.
    std::optional<table_error> check_party(const connection_state& in, const connection_state* out,
                                           const party_spec& p, const call_encapsulation& encap,
                                           checked_party& into) const;
    // An immutable party array of parties checked on this call (check_party, not again here);
    // slots[i] is party i's counter slot. nullptr + error when it cannot be built (a party's
    // connection is gone, or no memory).
    party_set* build_parties(std::span<const checked_party> parties,
                             std::span<const uint32_t> slots, table_error* error,
                             const call_encapsulation& encap) const;
    // The same from specs, each checked first (tests and tools that start from specs).
    party_set* build_parties(const connection_state& in, const std::vector<party_spec>& parties,
                             std::span<const uint32_t> slots, table_error* error,
                             const call_encapsulation& encap = {}) const;
    // `current` (a published array) with one party more, counted in `slot`; or with the party
    // at `index` left out. Their cost is a copy of the array, whatever the call's size.
    // `out` is p's egress connection, as the caller found it to check p.
    party_set* parties_with(const party_set& current, const connection_state& out,
                            const checked_party& p, uint32_t slot, table_error* error,
                            const call_encapsulation& encap) const;
    party_set* parties_without(const party_set& current, uint32_t index, table_error* error) const;
    // A VC with its counter slot and traffic-contract meter (one state per worker). It takes
    // `parties` over (vc::create); nullptr + error, and `parties` still the caller's, when
    // it cannot be made.
    vc* new_vc(const connection_state& in, uint32_t key, uint32_t stats_slot, party_set* parties,
               const traffic_contract& flow, table_error* error);
    static void free_vc(vc* v) noexcept; // with its party array and meters
    static size_t live_vcs() noexcept { return live_vcs_; }

    bool key_in_use(const connection_state& in, uint32_t key) const noexcept {
        return in.entry->keys.get(key) != nullptr;
    }
    bool publish_vc(const connection_state& in, vc* v) { return in.entry->keys.publish(v->key, v); }

    // Admission control: bandwidth booked on an egress connection, in bits per second. A
    // booking that would exceed the connection's bandwidth_bps is refused.
    bool book(const std::string& connection, uint64_t bps);
    void release(const std::string& connection, uint64_t bps) noexcept;
    uint64_t booked(const std::string& connection) const noexcept;

    // Per-VC and per-party counter slots (dataplane/counter_slots.hh). An object's slot is
    // acquired when it is made; once it is unpublished and its grace period has passed it is
    // retired here, and release_retired_slots() frees every retired slot: call it only after
    // the metrics snapshot was rebuilt without the objects (control/status_snapshot.hh).
    counter_slots& vc_slots() noexcept { return vc_slots_; }
    counter_slots& party_slots() noexcept { return party_slots_; }
    const counter_slots& vc_slots() const noexcept { return vc_slots_; }
    const counter_slots& party_slots() const noexcept { return party_slots_; }
    void retire_vc_slot(uint32_t slot) { retired_vc_slots_.push_back(slot); }
    void retire_party_slot(uint32_t slot) { retired_party_slots_.push_back(slot); }
    void release_retired_slots() noexcept;

    // Handles for VCs and parties, never reused while the process lives.
    uint64_t next_handle() noexcept { return next_handle_++; }
    vc* unpublish_vc(const connection_state& in, uint32_t key) noexcept {
        return in.entry->keys.unpublish(key);
    }

private:
    // p checked (check_party) on its call, leaving through `out`.
    static party resolve(const connection_state& out, const checked_party& p, uint32_t slot,
                         const call_encapsulation& encap);
    unsigned workers_;
    forwarding_table table_;
    std::vector<connection_state> connections_;
    std::vector<std::unique_ptr<connection_entry>> entries_;
    counter_slots vc_slots_;
    counter_slots party_slots_;
    std::vector<uint32_t> retired_vc_slots_, retired_party_slots_;
    uint64_t next_handle_ = 1;
    static inline size_t live_vcs_ = 0; // control thread only
    std::map<std::string, uint64_t> booked_bps_;
};

} // namespace vcplane
