#pragma once
// Per-worker counters. Each worker owns its own block and is its only writer; readers (the
// metrics scrape, tests) sum the blocks of all workers. An increment is a relaxed load and a
// relaxed store: no atomic read-modify-write (no lock prefix) on the worker path, yet no
// data race for the reader, who sees some recent value.

#include <array>
#include <cstdint>
#include <rte_common.h>
#include <rte_config.h>

namespace vcplane {

class counter {
public:
    void add(uint64_t n) noexcept {
        __atomic_store_n(&value_, __atomic_load_n(&value_, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
    }
    uint64_t read() const noexcept { return __atomic_load_n(&value_, __ATOMIC_RELAXED); }

private:
    uint64_t value_ = 0;
};

// Why a packet was not forwarded. Names are the `reason` label of vcplane_dropped_packets_total.
enum class drop_reason : uint8_t {
    truncated,          // shorter than the headers its ethertype promises
    wrong_ethertype,    // not MPLS on an MPLS connection, not 802.1Q on a VLAN connection
    reserved_key,       // MPLS label 0..15, VID 0 or 4095
    unknown_key,        // no VC with this label/VID on the ingress connection
    ttl_expired,        // MPLS TTL would reach 0
    no_connection,      // arrived on a port that no connection claims
    no_mbuf,            // the mempool had no buffer for a replica
    tx_full,            // the egress TX queue did not take the packet
    policed,            // red in its VC's traffic-contract meter (trTCM)
    unreadable_payload, // an edge action cannot read what the frame carries (dataplane/edge.hh)
    count_
};
inline constexpr size_t drop_reason_count = size_t(drop_reason::count_);

inline const char* drop_reason_name(drop_reason r) {
    constexpr const char* names[] = {
        "truncated",     "wrong_ethertype", "reserved_key", "unknown_key", "ttl_expired",
        "no_connection", "no_mbuf",         "tx_full",      "policed",     "unreadable_payload",
    };
    static_assert(sizeof(names) / sizeof(names[0]) == drop_reason_count);
    return names[size_t(r)];
}

struct port_counters {
    counter rx_packets;
    counter rx_bytes;
    counter tx_packets;
    counter tx_bytes;
};

struct alignas(RTE_CACHE_LINE_SIZE) worker_counters {
    std::array<port_counters, RTE_MAX_ETHPORTS> port;
    std::array<counter, drop_reason_count> drops;
    counter busy_cycles; // TSC cycles of loops that moved at least one packet
    counter idle_cycles; // TSC cycles of loops that found nothing
    counter loops;

    void drop(drop_reason r, uint64_t n = 1) noexcept { drops[size_t(r)].add(n); }
};

} // namespace vcplane
