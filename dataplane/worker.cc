#include "dataplane/worker.hh"

#include <algorithm>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_prefetch.h>

#include "dataplane/classify.hh"
#include "dataplane/rewrite.hh"

namespace vcplane {

namespace {
// How many frames ahead of the one being classified a small table's pass prefetches headers.
constexpr unsigned prefetch_ahead = 4;

// A large table's burst: each frame's vc is looked up this many frames ahead of its
// classification, and its party array and counter slots requested (its index slot was
// requested with the burst); the first party's slot of a party array of its own
// ahead_party_slot frames ahead (that array is requested ahead_vc frames ahead).
constexpr uint16_t ahead_vc = 6;
constexpr uint16_t ahead_party_slot = 2;
} // namespace

// One pass's clock: read once per pass (it serves the meters: a pass lasts a few µs at most)
// and again when enough frames and copies (work) have gone by to look at the quiescent bound.
// A local of the pass: as a member, every frame would wait for the store of the last count.
struct worker::pass_clock {
    uint64_t now;
    uint32_t work = 0;
};

// A large table's burst, in flight (worker.cc: the large-table pass). found[j]: frame j's vc,
// for j < looked_up; those below fresh_from were looked up before a quiescent state and are
// looked up again. slots[j]: frame j's index slot (null: none), valid until slots_fresh is
// cleared by a quiescent state (the table may be gone), then found again from the frame.
struct worker::lookahead {
    const vc* found[large_rx_burst_size];
    const key_table::slot* slots[large_rx_burst_size];
    uint16_t looked_up = 0;
    uint16_t fresh_from = 0;
    bool slots_fresh = true;
};

worker::worker(unsigned id, const forwarding_table& table, rte_mempool* replica_pool,
               uint16_t tx_queue)
    : table_(table)
    , id_(id)
    , quiescent_interval_(rte_get_tsc_hz() / 1000000 * quiescent_interval_us)
    , tx_(tx_queue, counters_)
    , replicator_(replica_pool, tx_, objects_, counters_) {}

worker::~worker() {
    delete rx_queues_; // the worker has stopped: nobody reads it (made by the control thread)
}

rx_queue_list* worker::publish_rx_queues(rx_queue_list* next) noexcept {
    rx_queue_list* old = rx_queues_;
    rcu_assign_pointer(rx_queues_, next);
    return old;
}

void worker::run(const std::atomic<bool>& stop) noexcept {
    rcu_register_thread();
    uint64_t before = rte_rdtsc();
    while (!stop.load(std::memory_order_relaxed)) {
        const unsigned n = poll_once();
        // No table pointer is held past this point, and every TX buffer is flushed. An idle
        // pass announces a quiescent state every time; a busy one when the last is older than
        // quiescent_interval_us (forward_burst also checks within a pass that runs long). Not
        // after every busy pass: an announcement is two full memory barriers, more than the
        // forwarding of a few frames.
        const uint64_t now = rte_rdtsc();
        if (n == 0) {
            rcu_quiescent_state();
            last_quiescent_ = now;
        } else {
            quiescent_if_due(now);
        }
        (n != 0 ? counters_.busy_cycles : counters_.idle_cycles).add(now - before);
        counters_.loops.add(1);
        before = now;
    }
    tx_.flush_all();
    rcu_unregister_thread();
}

// The pass: every RX queue once, a burst each, then the control ring, then every TX buffer.
unsigned worker::poll_once() noexcept {
    unsigned total = 0;
    pass_clock clock{rte_rdtsc()};
    rte_mbuf* pkts[large_rx_burst_size];
    // A copy of the queue list: a quiescent state within the pass may free the list itself.
    rx_queue_ref queues[max_rx_queues_per_worker];
    uint16_t queue_count = 0;
    if (const rx_queue_list* list = rcu_load(rx_queues_)) {
        queue_count = list->count;
        std::copy_n(list->queues.begin(), queue_count, queues);
    }
    for (uint16_t q = 0; q < queue_count; ++q) {
        const rx_queue_ref rxq = queues[q];
        const connection_entry* conn = table_.connection(rxq.port);
        const bool large = conn != nullptr && conn->keys.size() >= large_table_min_vcs;
        const uint16_t n = receive(rxq, pkts, large ? large_rx_burst_size : rx_burst_size);
        if (n == 0) {
            continue;
        }
        total += n;
        if (latency_ != nullptr) [[unlikely]] {
            maybe_sample(rxq.port, n);
        }
        if (conn == nullptr) [[unlikely]] {
            drop_unconnected(rxq.port, pkts, n);
        } else if (large) {
            forward_burst<table_mode::large>(conn, rxq.port, pkts, n, clock);
        } else {
            forward_burst<table_mode::small>(conn, rxq.port, pkts, n, clock);
        }
    }
    if (control_ring_ != nullptr) [[unlikely]] {
        void* frames[8];
        const unsigned n = rte_ring_sc_dequeue_burst(control_ring_, frames, 8, nullptr);
        for (unsigned i = 0; i < n; ++i) {
            auto* m = static_cast<rte_mbuf*>(frames[i]);
            tx_.transmit(m->port, m);
        }
    }
    tx_.flush_all();
    if (sample_port_ != no_port) [[unlikely]] {
        record_sample();
    }
    return total;
}

void worker::enable_latency_samples() {
    latency_ = std::make_unique<latency_samples>();
    const double hz = double(rte_get_tsc_hz());
    for (size_t i = 0; i < latency_bounds_seconds.size(); ++i) {
        latency_bound_cycles_[i] = uint64_t(latency_bounds_seconds[i] * hz);
    }
}

void worker::record_sample() noexcept {
    const uint64_t wait = rte_rdtsc() - sample_received_;
    size_t b = 0;
    while (b < latency_bound_cycles_.size() && wait > latency_bound_cycles_[b]) {
        ++b;
    }
    latency_samples::per_port& p = latency_->ports[sample_port_];
    p.buckets[b].add(1);
    p.sum_cycles.add(wait);
    sample_port_ = no_port;
}

// One burst of one connection. A small table stays in the cache: only the frames' headers are
// prefetched. A large one is a cache miss per frame: every frame's index slot is requested
// before the first is classified, and each vc looked up a few frames ahead (lookahead).
//
// A point-to-point frame is rewritten in place and its egress port noted; the run of such
// frames goes to the TX buffers together (tx_buffers::transmit_run). A multipoint frame is
// replicated, after the frames before it are handed on (one of them may be of the same VC).
template <worker::table_mode Mode>
[[gnu::always_inline]] inline void worker::forward_burst(const connection_entry* conn,
                                                         uint16_t port, rte_mbuf** pkts, uint16_t n,
                                                         pass_clock& clock) noexcept {
    constexpr bool large = Mode == table_mode::large;
    lookahead la;
    uint16_t egress[large_rx_burst_size]; // egress[j]: frame j's port as it is, or no_port
    uint16_t handed_on = 0;               // frames before it are in the TX buffers
    uint64_t rx_bytes = 0;                // of the frames classified
    if constexpr (large) {
        start_lookahead(la, *conn, pkts, n);
    } else {
        for (uint16_t i = 0; i < n && i < prefetch_ahead; ++i) {
            rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void*));
        }
    }
    bool connected = true;
    for (uint16_t i = 0; i < n; ++i) {
        const vc* const* found = nullptr;
        if constexpr (large) {
            advance_lookahead(la, *conn, pkts, n, i);
            found = i >= la.fresh_from ? &la.found[i] : nullptr;
        } else if (i + prefetch_ahead < n) {
            rte_prefetch0(rte_pktmbuf_mtod(pkts[i + prefetch_ahead], void*));
        }
        rte_mbuf* m = pkts[i];
        rx_bytes += rte_pktmbuf_pkt_len(m);
        egress[i] = no_port;
        uint32_t word = 0;
        if (const vc* v = classify(*conn, m, clock.now, found, &word)) {
            const party_set& parties = *rcu_load(v->parties);
            if (parties.core_point_to_point()) [[likely]] {
                egress[i] = forward_to(*conn, m, parties.only(), word);
            } else {
                tx_.transmit_run(pkts, egress, handed_on, i);
                handed_on = uint16_t(i + 1);
                clock.work += replicate(*conn, m, *v, parties, word);
            }
        }
        if (++clock.work >= quiescent_check_work) [[unlikely]] {
            // Enough work to look at the clock; a quiescent state, if one is due, comes after
            // every frame so far has gone to its TX buffer (quiescent_if_due).
            tx_.transmit_run(pkts, egress, handed_on, uint16_t(i + 1));
            handed_on = uint16_t(i + 1);
            clock.work = 0;
            clock.now = rte_rdtsc();
            if (quiescent_if_due(clock.now)) {
                // A grace period may end now: nothing read from the tables so far is valid.
                if constexpr (large) {
                    la.fresh_from = la.looked_up;
                    la.slots_fresh = false;
                }
                conn = table_.connection(port);
                if (conn == nullptr) [[unlikely]] {
                    drop_unconnected(port, pkts + i + 1, uint16_t(n - i - 1));
                    connected = false;
                    break;
                }
            }
        }
    }
    tx_.transmit_run(pkts, egress, handed_on, connected ? n : handed_on);
    counters_.port[port].rx_bytes.add(rx_bytes);
}

[[gnu::always_inline]] inline uint16_t worker::forward_to(const connection_entry& conn, rte_mbuf* m,
                                                          const party& p, uint32_t word) noexcept {
    uint8_t* frame = rte_pktmbuf_mtod(m, uint8_t*);
    if (conn.media == media_kind::mpls) {
        address_copy(frame, p, mpls_rewrite{word});
    } else {
        address_copy(frame, p, vlan_rewrite{uint16_t(word >> 16)});
    }
    objects_.party_copy(p.stats_slot, rte_pktmbuf_pkt_len(m));
    return p.tx_port;
}

uint32_t worker::replicate(const connection_entry& conn, rte_mbuf* m, const vc& v,
                           const party_set& parties, uint32_t word) noexcept {
    if (parties.edge()) {
        return replicator_.replicate_edge(m, v, parties, conn.media);
    }
    return conn.media == media_kind::mpls
               ? replicator_.replicate(m, v, parties, mpls_rewrite{word})
               : replicator_.replicate(m, v, parties, vlan_rewrite{uint16_t(word >> 16)});
}

uint16_t worker::receive(rx_queue_ref rxq, rte_mbuf** pkts, uint16_t max) noexcept {
    const uint16_t n = rte_eth_rx_burst(rxq.port, rxq.queue, pkts, max);
    if (n == 0) {
        return 0;
    }
    counters_.port[rxq.port].rx_packets.add(n); // their bytes: as forward_burst reads them
    return n;
}

void worker::drop_unconnected(uint16_t port, rte_mbuf** pkts, uint16_t n) noexcept {
    uint64_t bytes = 0;
    for (uint16_t i = 0; i < n; ++i) {
        bytes += rte_pktmbuf_pkt_len(pkts[i]);
    }
    counters_.port[port].rx_bytes.add(bytes);
    rte_pktmbuf_free_bulk(pkts, n);
    counters_.drop(drop_reason::no_connection, n);
}

// The large-table look-ahead. A VC of a large table is a cache miss (its index slot, which
// holds the vc itself unless the vc had to be built elsewhere; with counters on, its counter
// slots too), a few hundred cycles against some fifty to forward a frame. Requested a few
// frames ahead, the worker waits for most of them; so the whole burst's slots are requested at
// once, after every frame's header (for its key): the worker waits for about one miss per
// burst while the rest arrive together. The loop then looks each vc up ahead_vc frames ahead
// of classifying it (the slot has arrived by then) and requests the lines after it: a party
// array of its own, counter slots. (A vc built outside its slot is read there unrequested: a
// stall, only until a later replacement.) Those vcs are handed on to classify only until the
// worker announces a quiescent state (a grace period may end after it and free them): the
// rest are looked up again from their frames.
[[gnu::always_inline]] inline void worker::start_lookahead(lookahead& la,
                                                           const connection_entry& conn,
                                                           rte_mbuf* const* pkts,
                                                           uint16_t n) const noexcept {
    for (uint16_t i = 0; i < n; ++i) {
        rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void*));
    }
    for (uint16_t i = 0; i < n; ++i) {
        la.slots[i] = conn.keys.slot_of(peek_key(conn, pkts[i]));
        if (la.slots[i] != nullptr) {
            rte_prefetch0(la.slots[i]);
        }
    }
    // With counters on, every frame's counter slots are lines as cold as its index slot:
    // requested for the whole burst at once, like those.
    const uint16_t first = objects_.on() ? n : std::min(n, ahead_vc);
    while (la.looked_up < first) {
        look_up_next(la, conn, pkts);
    }
}

[[gnu::always_inline]] inline void worker::advance_lookahead(lookahead& la,
                                                             const connection_entry& conn,
                                                             rte_mbuf* const* pkts, uint16_t n,
                                                             uint16_t i) const noexcept {
    if (la.looked_up < n && la.looked_up <= i + ahead_vc) {
        look_up_next(la, conn, pkts);
    }
    if (objects_.parties != nullptr && i + ahead_party_slot < n) {
        const uint16_t j = i + ahead_party_slot;
        request_party_slot(j >= la.fresh_from ? la.found[j]
                                              : conn.keys.lookup(peek_key(conn, pkts[j])));
    }
}

[[gnu::always_inline]] inline void worker::look_up_next(lookahead& la, const connection_entry& conn,
                                                        rte_mbuf* const* pkts) const noexcept {
    const uint16_t j = la.looked_up;
    const key_table::slot* s =
        la.slots_fresh ? la.slots[j] : conn.keys.slot_of(peek_key(conn, pkts[j]));
    la.found[j] = key_table::vc_in(s);
    request_parties(la.found[j]);
    ++la.looked_up;
}

// The vc's line has arrived by now: its party array (when it is not in that line), its
// counter slot, and its first party's slot when the party array is in that line.
[[gnu::always_inline]] inline void worker::request_parties(const vc* v) const noexcept {
    if (v != nullptr) {
        const party_set* parties = rcu_load(v->parties);
        const bool inline_set = v->holds_inline(parties);
        if (!inline_set) {
            rte_prefetch0(parties);
        }
        if (objects_.vcs != nullptr) {
            rte_prefetch0(&objects_.vcs[v->stats_slot]);
        }
        if (objects_.parties != nullptr && inline_set && parties->size() != 0) {
            rte_prefetch0(&objects_.parties[(*parties)[0].stats_slot]);
        }
    }
}

// A party array of its own (requested by request_parties) has arrived: its first party's slot.
void worker::request_party_slot(const vc* v) const noexcept {
    if (v != nullptr) {
        const party_set* parties = rcu_load(v->parties);
        if (!v->holds_inline(parties) && parties->size() != 0) {
            rte_prefetch0(&objects_.parties[(*parties)[0].stats_slot]);
        }
    }
}

// The VC's traffic contract: red frames are dropped, green and yellow go on. The meter counts
// the Ethernet frame without FCS (rte_meter itself is agnostic; vcplane's rates are L2 rates).
bool worker::metered_conforms(const vc& v, const rte_mbuf* m, uint64_t now) noexcept {
    vc_worker_state& mine = v.meter->per_worker[id_];
    if (rte_meter_trtcm_color_blind_check(&mine.meter, &v.meter->profile, now,
                                          rte_pktmbuf_pkt_len(m)) != RTE_COLOR_RED) {
        return true;
    }
    mine.policed.add(1);
    return false;
}

[[gnu::always_inline]] inline const vc* worker::classify(const connection_entry& conn, rte_mbuf* m,
                                                         uint64_t now, const vc* const* found,
                                                         uint32_t* word) noexcept {
    if (found != nullptr && *found != nullptr) {
        // The look-ahead read this frame's key (peek_key) for the same connection: its length
        // and ethertype passed, and a vc is only ever made for a key in range (call_manager).
        *word = header_word(m);
        return admit(conn, m, **found, *word, now);
    }
    uint32_t key;
    drop_reason why;
    if (!read_key(conn, m, &key, word, &why)) [[unlikely]] {
        drop(m, why);
        return nullptr;
    }
    const vc* v = found != nullptr ? *found : conn.keys.lookup(key);
    if (v == nullptr) [[unlikely]] {
        drop(m, drop_reason::unknown_key);
        return nullptr;
    }
    return admit(conn, m, *v, *word, now);
}

// Inlined into classify: a call per frame is measurable on the point-to-point path.
[[gnu::always_inline]] inline const vc* worker::admit(const connection_entry& conn, rte_mbuf* m,
                                                      const vc& v, uint32_t word,
                                                      uint64_t now) noexcept {
    objects_.vc_frame(v.stats_slot, rte_pktmbuf_pkt_len(m));
    if (conn.media == media_kind::mpls && mpls_ttl_expires(word)) [[unlikely]] {
        drop_classified(m, v, drop_reason::ttl_expired);
        return nullptr;
    }
    if (!conforms(v, m, now)) {
        drop_classified(m, v, drop_reason::policed);
        return nullptr;
    }
    return &v;
}

} // namespace vcplane
