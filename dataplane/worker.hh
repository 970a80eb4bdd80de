#pragma once
// A worker lcore: polls its RX queues, classifies each frame to a VC (dataplane/classify.hh),
// rewrites it for its one party or replicates it for every party (dataplane/replicate.hh), and
// transmits through its own TX queue on each port (dataplane/tx_buffers.hh). This file is the
// pass that ties them together.
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
#include <memory>
#include <vector>

#include <rte_cycles.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "dataplane/counter_slots.hh"
#include "dataplane/counters.hh"
#include "dataplane/latency_samples.hh"
#include "dataplane/replicate.hh"
#include "dataplane/tables.hh"
#include "dataplane/tx_buffers.hh"

namespace vcplane {

inline constexpr uint16_t rx_burst_size = 32;
// A queue whose connection has a large table (large_table_min_vcs) is read this many frames at
// a time: the worker waits for the burst's first index slot once per burst (worker.cc).
inline constexpr uint16_t large_rx_burst_size = 64;
inline constexpr unsigned max_rx_queues_per_worker = 64;
// How long a busy worker may go without announcing a quiescent state (a grace period waits
// for every worker to announce one), in microseconds.
inline constexpr unsigned quiescent_interval_us = 2;
// Within a pass, the clock is looked at (for that bound) after this many frames and copies.
inline constexpr unsigned quiescent_check_work = 64;
// From this many VCs on a connection, each burst's table entries are requested for the whole
// burst before it is classified (worker.cc: the large-table pass); smaller tables stay in the
// cache.
inline constexpr uint32_t large_table_min_vcs = 16384;

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

    // Pools for chained copies of large frames (replicator::set_chain_pools). Before launch.
    void set_chain_pools(rte_mempool* headers, rte_mempool* payload_refs) noexcept {
        replicator_.set_chain_pools(headers, payload_refs);
    }
    // Buffers frames of several segments are made one in (replicator::set_linear_pool).
    void set_linear_pool(rte_mempool* linear) noexcept { replicator_.set_linear_pool(linear); }

    // This worker's per-VC and per-party counter arrays (dataplane/counter_slots.hh: what each
    // counts); null: not counted. Before launch.
    void set_counter_slots(slot_counters* vcs, slot_counters* parties) noexcept {
        objects_ = {vcs, parties};
    }

    // Sample forwarding latency (dataplane/latency_samples.hh). Before launch.
    void enable_latency_samples();
    // Null unless sampling; any thread may read it.
    const latency_samples* latency() const noexcept { return latency_.get(); }

    const worker_counters& counters() const noexcept { return counters_; }
    unsigned id() const noexcept { return id_; }

private:
    enum class table_mode { small, large };
    struct pass_clock;
    struct lookahead;

    // A burst from rxq, counted (its bytes are counted as the pass reads each frame: a separate
    // loop would wait on every mbuf's line before the first prefetch went out).
    uint16_t receive(rx_queue_ref rxq, rte_mbuf** pkts, uint16_t max) noexcept;
    // One burst of conn's frames (received on port) forwarded; when conn goes away within it,
    // the rest of the burst is dropped.
    template <table_mode Mode>
    [[gnu::always_inline]] void forward_burst(const connection_entry* conn, uint16_t port,
                                              rte_mbuf** pkts, uint16_t n,
                                              pass_clock& clock) noexcept;
    // The large-table look-ahead (worker.cc). Inlined into the pass, as are classify, admit and
    // forward_to: a call per frame, or look-ahead state kept in memory across one, is
    // measurable on the point-to-point path.
    [[gnu::always_inline]] void start_lookahead(lookahead& la, const connection_entry& conn,
                                                rte_mbuf* const* pkts, uint16_t n) const noexcept;
    [[gnu::always_inline]] void advance_lookahead(lookahead& la, const connection_entry& conn,
                                                  rte_mbuf* const* pkts, uint16_t n,
                                                  uint16_t i) const noexcept;
    [[gnu::always_inline]] void look_up_next(lookahead& la, const connection_entry& conn,
                                             rte_mbuf* const* pkts) const noexcept;
    [[gnu::always_inline]] void request_parties(const vc* v) const noexcept;
    void request_party_slot(const vc* v) const noexcept;
    // Frames received on port whose connection is gone (their bytes counted as received).
    void drop_unconnected(uint16_t port, rte_mbuf** pkts, uint16_t n) noexcept;
    // The vc m is forwarded on, after every check that can drop it (a dropped frame is freed
    // and counted by reason: null). *word: m's MPLS entry or VLAN word as received. found: the
    // vc the look-ahead found for m's key (*found null: none), valid while no quiescent state
    // has been announced since; a null `found`: the key is looked up here.
    [[gnu::always_inline]] const vc* classify(const connection_entry& conn, rte_mbuf* m,
                                              uint64_t now, const vc* const* found,
                                              uint32_t* word) noexcept;
    // classify's checks once m's vc v is known: TTL (MPLS) and traffic contract.
    [[gnu::always_inline]] const vc* admit(const connection_entry& conn, rte_mbuf* m, const vc& v,
                                           uint32_t word, uint64_t now) noexcept;
    bool conforms(const vc& v, const rte_mbuf* m, uint64_t now) noexcept {
        return v.meter == nullptr || metered_conforms(v, m, now);
    }
    bool metered_conforms(const vc& v, const rte_mbuf* m, uint64_t now) noexcept;
    // m, of a point-to-point VC, rewritten in place for its party; returns its egress port.
    [[gnu::always_inline]] uint16_t forward_to(const connection_entry& conn, rte_mbuf* m,
                                               const party& p, uint32_t word) noexcept;
    // A copy for every party of a multipoint VC (replicator::replicate).
    uint32_t replicate(const connection_entry& conn, rte_mbuf* m, const vc& v,
                       const party_set& parties, uint32_t word) noexcept;
    // A burst of n frames from port has arrived: the one to sample, when it is due.
    void maybe_sample(uint16_t port, uint16_t n) noexcept {
        frames_to_sample_ -= n;
        if (frames_to_sample_ <= 0 && sample_port_ == no_port) {
            sample_port_ = port;
            sample_received_ = rte_rdtsc();
            frames_to_sample_ += latency_sample_every;
        }
    }
    void record_sample() noexcept; // after the pass's final flush
    void drop(rte_mbuf* m, drop_reason r) noexcept {
        rte_pktmbuf_free(m);
        counters_.drop(r);
    }
    void drop_classified(rte_mbuf* m, const vc& v, drop_reason r) noexcept {
        objects_.vc_drop(v.stats_slot);
        drop(m, r);
    }
    // Announces a quiescent state if the last one is older than quiescent_interval_us, after
    // flushing every TX buffer (control_plane relies on it: after a grace period no worker
    // has a removed port's frames buffered); returns whether it did. The caller holds no
    // pointer read from the tables across this call, and has handed every frame it forwarded
    // to the TX buffers (forward_burst hands a burst's on before it looks at the clock).
    bool quiescent_if_due(uint64_t now) noexcept {
        if (now - last_quiescent_ < quiescent_interval_) {
            return false;
        }
        tx_.flush_all();
        rcu_quiescent_state();
        last_quiescent_ = now;
        return true;
    }

    worker_counters counters_;
    const forwarding_table& table_;
    unsigned id_;
    rx_queue_list* rx_queues_ = nullptr; // RCU-published by the control thread
    rte_ring* control_ring_ = nullptr;
    uint64_t quiescent_interval_;
    uint64_t last_quiescent_ = 0;
    object_counters objects_;
    tx_buffers tx_;
    replicator replicator_;
    // Latency sampling: the burst being sampled (sample_port_ no_port: none), and frames to go
    // before the next one is.
    std::unique_ptr<latency_samples> latency_;
    std::array<uint64_t, latency_bounds_seconds.size()> latency_bound_cycles_{};
    int64_t frames_to_sample_ = 0;
    uint16_t sample_port_ = no_port;
    uint64_t sample_received_ = 0;
};

// The workers' counters summed, as every reader reports them (the metrics scrape, the control
// socket's stats): any thread may call these while the workers run (counters.hh).
struct port_totals {
    uint64_t rx_packets = 0, rx_bytes = 0, tx_packets = 0, tx_bytes = 0;
};
inline port_totals sum_port_counters(const std::vector<std::unique_ptr<worker>>& workers,
                                     uint16_t port) {
    port_totals t;
    for (const auto& w : workers) {
        const port_counters& pc = w->counters().port[port];
        t.rx_packets += pc.rx_packets.read();
        t.rx_bytes += pc.rx_bytes.read();
        t.tx_packets += pc.tx_packets.read();
        t.tx_bytes += pc.tx_bytes.read();
    }
    return t;
}
inline uint64_t sum_drops(const std::vector<std::unique_ptr<worker>>& workers, drop_reason r) {
    uint64_t n = 0;
    for (const auto& w : workers) {
        n += w->counters().drops[size_t(r)].read();
    }
    return n;
}

} // namespace vcplane
