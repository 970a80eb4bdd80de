#pragma once
// What a party and a traffic contract are, and the rules on them.
//
// The file (config/) and the call-management NPI (contracts/callmgmt, control/) describe a
// call with these same types, and check them with these same rules: the parser refuses at
// --check time exactly what a call manager would refuse at run time, and a new rule is
// written once, here. Nothing here knows of DPDK or of the switch (docs/design.md §2).

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "vocab/mac.hh"
#include "vocab/media.hh"
#include "vocab/party_action.hh"

namespace vcplane {

inline constexpr size_t max_parties_per_call = 1024;

// One party of a call: the egress connection it leaves through, the label or VID its copies
// carry there (none on a port connection), and the next hop's MAC address (none for a
// pseudowire's decapsulated copies, which keep the inner frame's addresses).
struct party_spec {
    std::string name;
    std::string connection;
    uint32_t key = 0;
    mac_address next_hop{};
};

// A call's traffic contract (the FLOWSPEC subset the NPI carries): rates in bytes per second
// of Ethernet frames without FCS, burst in bytes. sustained_rate 0 means no meter.
//
// fair is the service its parties get: false, each frame's copies are made in party order
// (the first party always waits least); true, the order is rotated frame by frame, so every
// party waits the same on average (the worker's rotation is its own, over all fair calls).
struct traffic_contract {
    uint64_t sustained_rate = 0; // TokenRate -> the meter's CIR
    uint64_t peak_rate = 0;      // PeakBandwidth -> PIR; 0: same as sustained
    uint64_t burst = 0;          // TokenBucketSize -> CBS and PBS; 0: default_burst()
    bool fair = false;           // ServiceType: copies in rotated party order

    bool operator==(const traffic_contract&) const = default;
};

enum class contract_problem : uint8_t {
    none,
    needs_sustained_rate, // a peak rate or burst without a sustained rate
    peak_below_sustained,
};

constexpr contract_problem check_contract(const traffic_contract& c) {
    if (c.sustained_rate == 0 && (c.peak_rate != 0 || c.burst != 0)) {
        return contract_problem::needs_sustained_rate;
    }
    if (c.peak_rate != 0 && c.peak_rate < c.sustained_rate) {
        return contract_problem::peak_below_sustained;
    }
    return contract_problem::none;
}

// The burst of a contract that states none: 10 ms of the sustained rate, and at least two
// full frames of the ingress connection's MTU (so a conforming sender is never policed for
// the size of one frame).
constexpr uint64_t default_burst(uint64_t sustained_rate, uint32_t mtu) {
    return std::max<uint64_t>(sustained_rate / 100, 2 * (uint64_t(mtu) + 18));
}

// Admission control. A call books its sustained rate, in bits per second, on the egress
// connection of every party; a connection that states its bandwidth admits a booking only
// while the sum stays within it. bandwidth_bps 0 means not stated: everything is admitted.
constexpr uint64_t booked_bps(const traffic_contract& c) {
    return c.sustained_rate * 8;
}
constexpr bool admits(uint64_t bandwidth_bps, uint64_t booked, uint64_t more) {
    return bandwidth_bps == 0 || (more <= bandwidth_bps && booked <= bandwidth_bps - more);
}

// What is wrong with a party of a call, if anything: the one check the file and the NPI
// both make (the egress connection itself is looked up by each).
enum class party_problem : uint8_t {
    none,
    key_out_of_range, // not in the egress media's key range (nor label 3 on MPLS)
    key_on_port,      // a key on a port connection, which has none
    no_next_hop,      // 00:00:00:00:00:00 (or none given) where the copy needs one
    next_hop_unused,  // a next hop on a decapsulating party: the inner frame keeps its own
    action,           // the combination cannot work (derived_action::problem says why)
};

struct party_check {
    derived_action derived;
    party_problem problem = party_problem::none;
};

constexpr party_check check_party_spec(media_kind ingress, media_kind egress, uint32_t key,
                                       const mac_address& next_hop, const call_encapsulation& e) {
    party_check c;
    if (egress == media_kind::port && key != port_key) {
        c.problem = party_problem::key_on_port;
        return c;
    }
    if (!party_key_fits(egress, key)) {
        c.problem = party_problem::key_out_of_range;
        return c;
    }
    c.derived = derive_action(ingress, egress, key, e);
    if (c.derived.problem != action_problem::none) {
        c.problem = party_problem::action;
    } else if (keeps_inner_addresses(c.derived.action)) {
        if (usable_next_hop(next_hop)) {
            c.problem = party_problem::next_hop_unused;
        }
    } else if (!usable_next_hop(next_hop)) {
        c.problem = party_problem::no_next_hop;
    }
    return c;
}

// A party that passed check_party_spec on its call: the spec with the action its copies take,
// derived there once. The call managers make it when they accept a party and keep it as it
// is; the tables are built from it without checking or deriving again.
struct checked_party {
    party_spec spec;
    party_action action = party_action::swap;
};

} // namespace vcplane
