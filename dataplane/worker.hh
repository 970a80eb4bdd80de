#pragma once
// A worker lcore: polls its RX queues, classifies each frame to a VC, replicates it once per
// party with that party's headers, and transmits through its own TX queue on each port.
//
// Worker-path rules (docs/design.md §4): no locks, no atomic read-modify-write, no system calls, no
// logging, no heap allocation. Mbufs come from a mempool (per-lcore cached), counters are
// this worker's own (dataplane/counters.hh), tables are read under QSBR (dataplane/rcu.hh).
//
// Threading: a worker object is built and wired (publish_rx_queues) by the control thread before
// it is launched; after launch only its own lcore touches it, except counters(), which any
// thread may read, and the stop flag, which the control thread sets.

#include <array>
#include <atomic>
#include <cstdint>

#include <rte_cycles.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "dataplane/counter_slots.hh"
#include "dataplane/counters.hh"
#include "dataplane/tables.hh"

namespace vcplane {

inline constexpr uint16_t rx_burst_size = 32;
// A queue whose connection has a large table (large_table_min_vcs) is read this many frames at
// a time: the worker waits for the burst's first index slot once per burst (worker.cc).
inline constexpr uint16_t large_rx_burst_size = 64;
inline constexpr uint16_t tx_burst_size = 32;
inline constexpr unsigned max_rx_queues_per_worker = 64;
// Replication by size: a copy of a frame up to this many bytes is a whole new mbuf (one
// allocation, a few cache lines copied). A larger one-segment frame to parties that all take
// chains becomes one header mbuf per party (the rewritten Ethernet header and label/tag, from
// one bulk allocation) chained to the original itself, whose header is cut off and whose
// reference count becomes the number of parties: as DPDK's ipv4_multicast example does, no
// payload copied, no second mbuf per copy, no atomic operation on the worker (the reference
// is dropped by whoever frees a copy after TX). Otherwise (a multi-segment original, a party
// whose port cannot send chains, no header for every party, more than shared_payload_max
// parties) each copy but the last is a header chained to an indirect mbuf over the
// original's payload (rte_pktmbuf_clone), or a whole copy, and the last party gets the
// original.
inline constexpr uint32_t copy_whole_max = 256;
inline constexpr uint32_t shared_payload_max = 64;
inline constexpr uint32_t replica_header_len = 18; // Ethernet + one label or tag
// How long a busy worker may go without announcing a quiescent state (a grace period waits
// for every worker to announce one), in microseconds.
inline constexpr unsigned quiescent_interval_us = 2;
// Within a pass, the clock is looked at (for that bound) after this many frames and copies.
inline constexpr unsigned quiescent_check_work = 64;
// From this many VCs on a connection, each burst's table entries are requested for the whole
// burst before it is classified (worker::request_tables); smaller tables stay in the cache.
inline constexpr uint32_t large_table_min_vcs = 16384;
static_assert(RTE_MAX_ETHPORTS <= 64, "tx_pending_ is a 64-bit port mask");

struct rx_queue_ref {
    uint16_t port;
    uint16_t queue;
};

// The RX queues a worker polls: immutable once published (dataplane/rcu.hh). Ports come and
// go at run time by publishing a new list and retiring the old one after a grace period.
struct rx_queue_list {
    uint16_t count = 0;
    std::array<rx_queue_ref, max_rx_queues_per_worker> queues{};
};

class worker {
public:
    // replica_pool: where whole copies for all but the last party come from.
    // tx_queue: the TX queue this worker owns on every port.
    worker(unsigned id, const forwarding_table& table, rte_mempool* replica_pool,
           uint16_t tx_queue);
    ~worker();
    worker(const worker&) = delete;
    worker& operator=(const worker&) = delete;

    // Control thread. Publishes a new list of RX queues and returns the old one, which the
    // caller frees after a grace period (or at once, before launch and after stop).
    rx_queue_list* publish_rx_queues(rx_queue_list* next) noexcept;
    // Any thread that is a QSBR reader: it may hold the list until its next quiescent state.
    const rx_queue_list* rx_queues() const noexcept { return rcu_load(rx_queues_); }

    // One pass over every RX queue, then every buffered TX packet flushed. Returns the number
    // of packets received. The caller must be a registered QSBR reader (run() is).
    unsigned poll_once() noexcept;

    // The lcore main loop: register with RCU, poll until stop is set, announce a quiescent
    // state after every pass, unregister. Returns when stop is observed.
    void run(const std::atomic<bool>& stop) noexcept;

    // Frames the control thread wants sent (close data), each with m->port set to its egress
    // port: a single-producer/single-consumer ring the worker drains every pass and transmits
    // on its own TX queues, so the control thread needs no queue of its own. Before launch.
    void set_control_ring(rte_ring* r) noexcept { control_ring_ = r; }

    // Pools for chained replicas of large frames: headers (data room >= replica_header_len;
    // both ways of chaining take them) and payload references (indirect mbufs, no data room;
    // only the per-copy fallback takes them). Without them (null) every copy is whole.
    // Before launch.
    void set_chain_pools(rte_mempool* headers, rte_mempool* payload_refs) noexcept {
        header_pool_ = headers;
        payload_ref_pool_ = payload_refs;
    }

    // This worker's per-VC and per-party counter arrays (dataplane/counter_slots.hh); null:
    // not counted. Before launch. A VC's slot counts the frames classified to it and its drops
    // after classification (TTL expired, policed, no buffer for a copy); a party's slot counts
    // the copies handed to its port and the copies it lost for want of a buffer. Copies a
    // full TX queue refuses are counted per port (drop reason tx_full), not per party.
    void set_counter_slots(slot_counters* vcs, slot_counters* parties) noexcept {
        vc_slots_ = vcs;
        party_slots_ = parties;
    }

    const worker_counters& counters() const noexcept { return counters_; }
    unsigned id() const noexcept { return id_; }

private:
    struct tx_buffer {
        uint16_t count = 0;
        rte_mbuf* pkts[tx_burst_size];
    };

    // A burst from rxq, counted (its bytes are counted as poll_once reads each frame: a
    // separate pass would wait on every mbuf's line before the first prefetch went out).
    uint16_t receive(rx_queue_ref rxq, rte_mbuf** pkts, uint16_t max) noexcept;
    void request_tables(const connection_entry& conn, rte_mbuf* const* pkts, uint16_t n,
                        const key_table::slot** slots) const noexcept;
    void request_parties(const vc* v) const noexcept;
    void request_party_slot(const vc* v) const noexcept;
    bool counting() const noexcept { return vc_slots_ != nullptr || party_slots_ != nullptr; }
    // Frames received on port whose connection is gone (their bytes counted as received).
    void drop_unconnected(uint16_t port, rte_mbuf** pkts, uint16_t n) noexcept;
    // The vc m is forwarded on, after every check that can drop it (a dropped frame is freed
    // and counted by reason: null). *header_word: m's MPLS entry or VLAN TCI as received.
    // found: the vc poll_once looked up ahead for m's key (*found null: none), valid while no
    // quiescent state has been announced since; a null `found`: look the key up here.
    const vc* classify(const connection_entry& conn, rte_mbuf* m, uint64_t now,
                       const vc* const* found, uint32_t* header_word) noexcept;
    // classify's checks once m's vc v is known (raw: m's MPLS entry or VLAN word).
    const vc* admit(const connection_entry& conn, rte_mbuf* m, const vc& v, uint32_t raw,
                    uint64_t now, uint32_t* header_word) noexcept;
    bool conforms(const vc& v, const rte_mbuf* m, uint64_t now) noexcept {
        return v.meter == nullptr || metered_conforms(v, m, now);
    }
    bool metered_conforms(const vc& v, const rte_mbuf* m, uint64_t now) noexcept;
    // A copy of m for every party of v (the original for the last), sent. Returns the copies
    // it tried to make: frames and copies count towards poll_once's next look at the clock
    // (after quiescent_check_work of them, e.g. one frame to 64 parties, it announces a
    // quiescent state if one is due, so a grace period does not wait for a whole burst of
    // large fan-outs).
    template <typename Rewrite>
    uint32_t replicate(rte_mbuf* m, const vc& v, const party_set& parties,
                       Rewrite rewrite) noexcept;
    template <typename Rewrite>
    bool replicate_shared(rte_mbuf* m, const party_set& parties, Rewrite rewrite) noexcept;
    void count_party(const party& p, uint32_t len) noexcept {
        if (party_slots_ != nullptr) {
            slot_counters& c = party_slots_[p.stats_slot];
            c.packets.add(1);
            c.bytes.add(len);
        }
    }
    void drop_classified(rte_mbuf* m, const vc& v, drop_reason r) noexcept;
    void count_vc(const vc& v, const rte_mbuf* m) noexcept {
        if (vc_slots_ != nullptr) {
            slot_counters& c = vc_slots_[v.stats_slot];
            c.packets.add(1);
            c.bytes.add(rte_pktmbuf_pkt_len(m));
        }
    }
    rte_mbuf* chained_replica(rte_mbuf* m) noexcept;
    static void chain_header(rte_mbuf* h, const uint8_t* bytes, rte_mbuf* rest,
                             uint16_t port) noexcept;
    rte_mbuf* whole_copy(const rte_mbuf* m) noexcept;
    static rte_mbuf* fill_copy(rte_mbuf* c, const rte_mbuf* m) noexcept;
    static void init_replica(rte_mbuf* c, uint16_t port, uint32_t len) noexcept;
    // Announces a quiescent state if the last one is older than quiescent_interval_us, after
    // flushing every TX buffer (control_plane relies on it: after a grace period no worker
    // has a removed port's frames buffered); returns whether it did. The caller holds no
    // pointer read from the tables across this call, and has handed every frame it forwarded
    // to the TX buffers (poll_once hands a burst's on before it looks at the clock).
    bool quiescent_if_due(uint64_t now) noexcept {
        if (now - last_quiescent_ < quiescent_interval_) {
            return false;
        }
        flush_all();
        rcu_quiescent_state();
        last_quiescent_ = now;
        return true;
    }
    // Buffers frames[from, to) for their ports' TX queues (ports[j]: frame j's port, or
    // UINT16_MAX for none), in order; a full buffer goes out at once. How a burst's
    // point-to-point frames reach their ports: a run of frames to one port at a time.
    void transmit_frames(rte_mbuf* const* frames, const uint16_t* ports, uint16_t from,
                         uint16_t to) noexcept;
    // Buffers m for port's TX queue; a full buffer goes out at once. For copies and the
    // control ring's frames.
    void transmit(uint16_t port, rte_mbuf* m) noexcept {
        tx_buffer& b = tx_[port];
        b.pkts[b.count++] = m;
        tx_pending_ |= uint64_t(1) << port;
        if (b.count == tx_burst_size) [[unlikely]] {
            flush_port(port);
        }
    }
    void flush_port(uint16_t port) noexcept;
    void flush_all() noexcept;
    void drop(rte_mbuf* m, drop_reason r) noexcept;

    worker_counters counters_;
    const forwarding_table& table_;
    rte_mempool* replica_pool_;
    unsigned id_;
    uint16_t tx_queue_;
    uint64_t tx_pending_ = 0;            // bit p: tx_[p] holds packets
    rx_queue_list* rx_queues_ = nullptr; // RCU-published by the control thread
    rte_ring* control_ring_ = nullptr;
    rte_mempool* header_pool_ = nullptr;
    rte_mempool* payload_ref_pool_ = nullptr;
    uint64_t quiescent_interval_;
    bool replica_line_room_; // a replica buffer holds a whole line after its headroom
    uint64_t last_quiescent_ = 0;
    slot_counters* vc_slots_ = nullptr;
    slot_counters* party_slots_ = nullptr;
    std::array<tx_buffer, RTE_MAX_ETHPORTS> tx_{};
};

} // namespace vcplane
