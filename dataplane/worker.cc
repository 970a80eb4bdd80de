#include "dataplane/worker.hh"

#include <algorithm>
#include <cstring>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_memcpy.h>
#include <rte_prefetch.h>
#ifdef __AVX2__
#include <immintrin.h>
#endif

#include "dataplane/wire.hh"

namespace vcplane {

namespace {
// How many frames ahead of the one being classified to prefetch the headers of.
constexpr unsigned prefetch_ahead = 4;

// A large table's burst (worker::request_tables): each frame's vc is looked up this many
// frames ahead of its classification, and its party array and counter slots requested (its
// index slot was requested with the burst); the first party's slot of a party array of its own
// ahead_party_slot frames ahead (that array is requested ahead_vc frames ahead).
constexpr uint16_t ahead_vc = 6;
constexpr uint16_t ahead_party_slot = 2;

constexpr uint32_t no_key = UINT32_MAX;

// A frame's egress port when it has none to be handed to (dropped, or sent as copies).
constexpr uint16_t no_port = UINT16_MAX;

// A copy's label or tag for party p, written over the frame's (the MACs are written apart).
struct mpls_rewrite {
    uint32_t entry; // the frame's MPLS entry as received
    void operator()(uint8_t* frame, const party& p) const noexcept {
        wire::store_be32(frame + wire::ether_header_len, wire::swap_mpls_entry(entry, p.out_key));
    }
};
struct vlan_rewrite {
    uint16_t tci; // the frame's VLAN TCI as received
    void operator()(uint8_t* frame, const party& p) const noexcept {
        wire::store_be16(frame + wire::ether_header_len,
                         wire::swap_vlan_tci(tci, uint16_t(p.out_key)));
    }
};

// The key classify() would look up, or no_key; read for prefetching only (classify checks
// the frame in full).
uint32_t peek_key(const connection_entry& conn, const rte_mbuf* m) noexcept {
    if (rte_pktmbuf_data_len(m) < wire::ether_header_len + 4) [[unlikely]] {
        return no_key;
    }
    const uint8_t* f = rte_pktmbuf_mtod(m, const uint8_t*);
    const uint16_t ethertype = wire::load_be16(f + wire::ethertype_offset);
    const uint8_t* word = f + wire::ether_header_len;
    if (conn.media == media_kind::mpls) {
        return ethertype == wire::ethertype_mpls ? wire::load_be32(word) >> 12 : no_key;
    }
    return ethertype == wire::ethertype_vlan ? wire::load_be16(word) & 0x0fffu : no_key;
}

// A frame's first cache line, read once and written whole into each copy: in two registers
// where the core has them (a copy through memory reads the image back for every party).
class line_image {
public:
    static constexpr uint32_t size = 64;
#ifdef __AVX2__
    void load(const uint8_t* src) noexcept {
        lo_ = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src));
        hi_ = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 32));
    }
    void store(uint8_t* dst) const noexcept {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), lo_);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 32), hi_);
    }

private:
    __m256i lo_, hi_;
#else
    void load(const uint8_t* src) noexcept {
        std::memcpy(bytes_, src, size);
    }
    void store(uint8_t* dst) const noexcept {
        std::memcpy(dst, bytes_, size);
    }

private:
    alignas(size) uint8_t bytes_[size];
#endif
};

} // namespace

worker::worker(unsigned id, const forwarding_table& table, rte_mempool* replica_pool,
               uint16_t tx_queue)
    : table_(table)
    , replica_pool_(replica_pool)
    , id_(id)
    , tx_queue_(tx_queue)
    , quiescent_interval_(rte_get_tsc_hz() / 1000000 * quiescent_interval_us)
    , replica_line_room_(replica_pool != nullptr && rte_pktmbuf_data_room_size(replica_pool) >=
                                                        RTE_PKTMBUF_HEADROOM + line_image::size) {}

worker::~worker() {
    // Frames still buffered when the worker was stopped without a final flush.
    for (auto& b : tx_) {
        rte_pktmbuf_free_bulk(b.pkts, b.count);
        b.count = 0;
    }
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
        // quiescent_interval_us (poll_once also checks within a pass that runs long). Not
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
    flush_all();
    rcu_unregister_thread();
}

unsigned worker::poll_once() noexcept {
    unsigned total = 0;
    // Frames and copies since the clock was last looked at in this pass (a local: as a member
    // every frame would wait for the store of the last one's count).
    uint32_t work = 0;
    // One clock reading per pass serves the meters (a pass lasts a few µs at most) and is
    // read again only when the pass has done enough work to look at the quiescent bound.
    uint64_t now = rte_rdtsc();
    rte_mbuf* pkts[large_rx_burst_size];
    // A copy of the queue list: a quiescent state within the pass may free the list itself.
    rx_queue_ref queue_refs[max_rx_queues_per_worker];
    uint16_t queues = 0;
    if (const rx_queue_list* list = rcu_load(rx_queues_)) {
        queues = list->count;
        std::copy_n(list->queues.begin(), queues, queue_refs);
    }
    for (uint16_t q = 0; q < queues; ++q) {
        const rx_queue_ref rxq = queue_refs[q];
        const connection_entry* conn = table_.connection(rxq.port);
        // A large table: every frame's index slot (a line that usually holds its vc too) is
        // requested before the first is classified (request_tables), and each vc is looked up
        // ahead_vc frames early (with counters on, all at once), for its party array and
        // counter slots; a small table stays in the cache.
        const bool large = conn != nullptr && conn->keys.size() >= large_table_min_vcs;
        const uint16_t n = receive(rxq, pkts, large ? large_rx_burst_size : rx_burst_size);
        if (n == 0) {
            continue;
        }
        total += n;
        if (conn == nullptr) [[unlikely]] {
            drop_unconnected(rxq.port, pkts, n);
            continue;
        }
        const vc* found[large_rx_burst_size]; // found[j]: frame j's vc, for j < looked_up
        uint16_t looked_up = 0;
        uint16_t fresh_from = 0; // found[j] for j below: looked up before a quiescent state
        // egress[j]: the port frame j goes to as it is (a point-to-point VC's), or no_port;
        // frames up to handed_on are in their ports' TX buffers.
        uint16_t egress[large_rx_burst_size];
        uint16_t handed_on = 0;
        uint64_t rx_bytes = 0; // of the frames classified
        // slots[j]: frame j's index slot (null: none), found by request_tables; after a
        // quiescent state (the table may be gone) each is found again, from the frame.
        const key_table::slot* slots[large_rx_burst_size];
        bool slots_fresh = true;
        auto look_up = [&] {
            const key_table::slot* s = slots_fresh
                                           ? slots[looked_up]
                                           : conn->keys.slot_of(peek_key(*conn, pkts[looked_up]));
            found[looked_up] = key_table::vc_in(s);
            request_parties(found[looked_up]);
            ++looked_up;
        };
        if (large) {
            request_tables(*conn, pkts, n, slots);
            // With counters on, every frame's counter slots are lines as cold as its index
            // slot: requested for the whole burst at once, like those.
            const uint16_t first = counting() ? n : std::min(n, ahead_vc);
            while (looked_up < first) {
                look_up();
            }
        } else {
            for (uint16_t i = 0; i < n && i < prefetch_ahead; ++i) {
                rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void*));
            }
        }
        for (uint16_t i = 0; i < n; ++i) {
            if (large) {
                if (looked_up < n && looked_up <= i + ahead_vc) {
                    look_up();
                }
                if (party_slots_ != nullptr && i + ahead_party_slot < n) {
                    const uint16_t j = i + ahead_party_slot;
                    request_party_slot(
                        j >= fresh_from ? found[j] : conn->keys.lookup(peek_key(*conn, pkts[j])));
                }
            } else if (i + prefetch_ahead < n) {
                rte_prefetch0(rte_pktmbuf_mtod(pkts[i + prefetch_ahead], void*));
            }
            const bool fresh = large && i >= fresh_from;
            rte_mbuf* m = pkts[i];
            rx_bytes += rte_pktmbuf_pkt_len(m);
            uint32_t word = 0;
            egress[i] = no_port;
            if (const vc* v = classify(*conn, m, now, fresh ? &found[i] : nullptr, &word)) {
                const party_set& parties = *rcu_load(v->parties);
                if (parties.size() == 1) [[likely]] {
                    // Point to point: the frame itself, rewritten in place, handed to its
                    // port with the rest of the burst's (transmit_frames).
                    const party& p = parties[0];
                    uint8_t* frame = rte_pktmbuf_mtod(m, uint8_t*);
                    wire::write_macs(frame, p.dst_mac, p.src_mac);
                    if (conn->media == media_kind::mpls) {
                        mpls_rewrite{word}(frame, p);
                    } else {
                        vlan_rewrite{uint16_t(word)}(frame, p);
                    }
                    egress[i] = p.tx_port;
                    count_party(p, rte_pktmbuf_pkt_len(m));
                } else {
                    // The frames before it first: one of them may be of the same VC.
                    if (handed_on < i) {
                        transmit_frames(pkts, egress, handed_on, i);
                    }
                    handed_on = uint16_t(i + 1);
                    work += conn->media == media_kind::mpls
                                ? replicate(m, *v, parties, mpls_rewrite{word})
                                : replicate(m, *v, parties, vlan_rewrite{uint16_t(word)});
                }
            }
            if (++work >= quiescent_check_work) [[unlikely]] {
                // Enough work to look at the clock; a quiescent state, if one is due, comes
                // after every frame so far has gone to its port (quiescent_if_due).
                transmit_frames(pkts, egress, handed_on, uint16_t(i + 1));
                handed_on = uint16_t(i + 1);
                work = 0;
                now = rte_rdtsc();
                if (quiescent_if_due(now)) {
                    // A grace period may end now and free what was looked up so far.
                    fresh_from = looked_up;
                    slots_fresh = false;
                    conn = table_.connection(rxq.port);
                    if (conn == nullptr) [[unlikely]] {
                        drop_unconnected(rxq.port, pkts + i + 1, uint16_t(n - i - 1));
                        break;
                    }
                }
            }
        }
        transmit_frames(pkts, egress, handed_on, conn != nullptr ? n : handed_on);
        counters_.port[rxq.port].rx_bytes.add(rx_bytes);
    }
    if (control_ring_ != nullptr) [[unlikely]] {
        void* frames[8];
        const unsigned n = rte_ring_sc_dequeue_burst(control_ring_, frames, 8, nullptr);
        for (unsigned i = 0; i < n; ++i) {
            auto* m = static_cast<rte_mbuf*>(frames[i]);
            transmit(m->port, m);
        }
    }
    flush_all();
    return total;
}

uint16_t worker::receive(rx_queue_ref rxq, rte_mbuf** pkts, uint16_t max) noexcept {
    const uint16_t n = rte_eth_rx_burst(rxq.port, rxq.queue, pkts, max);
    if (n == 0) {
        return 0;
    }
    counters_.port[rxq.port].rx_packets.add(n); // their bytes: as poll_once reads them
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

// A VC of a large table is a cache miss (its index slot, which holds the vc itself unless the
// vc had to be built elsewhere; with counters on, its counter slots too), a few hundred cycles
// against some fifty to forward a frame. Requested a few frames ahead, the worker waits for
// most of them; so the whole burst's slots are requested at once, after every frame's header
// (for its key): the worker waits for about one miss per burst while the rest arrive together.
// Its loop then looks each vc up a few frames ahead of classifying it (the slot has arrived by
// then) and requests the lines after it: a party array of its own, counter slots. (A vc built
// outside its slot is read there unrequested: a stall, only until a later replacement.) Those vcs
// are handed on to classify only until the worker announces a quiescent state (a grace period
// may end after it and free them): the rest are looked up again from their frames.
// (Before the vc lived in its slot, a third stage requested every vc: the worker then waited
// for the whole burst's slots before classifying any frame.)
void worker::request_tables(const connection_entry& conn, rte_mbuf* const* pkts, uint16_t n,
                            const key_table::slot** slots) const noexcept {
    for (uint16_t i = 0; i < n; ++i) {
        rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void*));
    }
    for (uint16_t i = 0; i < n; ++i) {
        slots[i] = conn.keys.slot_of(peek_key(conn, pkts[i]));
        if (slots[i] != nullptr) {
            rte_prefetch0(slots[i]);
        }
    }
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
        if (vc_slots_ != nullptr) {
            rte_prefetch0(&vc_slots_[v->stats_slot]);
        }
        if (party_slots_ != nullptr && inline_set && parties->size() != 0) {
            rte_prefetch0(&party_slots_[(*parties)[0].stats_slot]);
        }
    }
}

// A party array of its own (requested by request_parties) has arrived: its first party's slot.
void worker::request_party_slot(const vc* v) const noexcept {
    if (v != nullptr) {
        const party_set* parties = rcu_load(v->parties);
        if (!v->holds_inline(parties) && parties->size() != 0) {
            rte_prefetch0(&party_slots_[(*parties)[0].stats_slot]);
        }
    }
}

void worker::drop(rte_mbuf* m, drop_reason r) noexcept {
    rte_pktmbuf_free(m);
    counters_.drop(r);
}

void worker::drop_classified(rte_mbuf* m, const vc& v, drop_reason r) noexcept {
    if (vc_slots_ != nullptr) {
        vc_slots_[v.stats_slot].drops.add(1);
    }
    drop(m, r);
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
                                                         uint32_t* header_word) noexcept {
    uint8_t* f = rte_pktmbuf_mtod(m, uint8_t*);
    const uint8_t* word = f + wire::ether_header_len;
    if (found != nullptr && *found != nullptr) {
        // The look-ahead read this frame's key (peek_key) for the same connection: its length
        // and ethertype passed, and a vc is only ever made for a key in range (call_manager).
        return admit(conn, m, **found, wire::load_be32(word), now, header_word);
    }
    // MPLS and 802.1Q both put a 4-byte word right after the ethertype.
    if (rte_pktmbuf_data_len(m) < wire::ether_header_len + 4) [[unlikely]] {
        drop(m, drop_reason::truncated);
        return nullptr;
    }
    const uint16_t ethertype = wire::load_be16(f + wire::ethertype_offset);
    const uint32_t raw = wire::load_be32(word);
    uint32_t key;
    if (conn.media == media_kind::mpls) {
        if (ethertype != wire::ethertype_mpls) [[unlikely]] {
            drop(m, drop_reason::wrong_ethertype);
            return nullptr;
        }
        key = raw >> 12;
        if (key < mpls_label_min) [[unlikely]] {
            drop(m, drop_reason::reserved_key);
            return nullptr;
        }
    } else {
        if (ethertype != wire::ethertype_vlan) [[unlikely]] {
            drop(m, drop_reason::wrong_ethertype);
            return nullptr;
        }
        key = (raw >> 16) & 0x0fff;
        if (key < vlan_vid_min || key > vlan_vid_max) [[unlikely]] {
            drop(m, drop_reason::reserved_key);
            return nullptr;
        }
    }
    const vc* v = found != nullptr ? *found : conn.keys.lookup(key);
    if (v == nullptr) [[unlikely]] {
        drop(m, drop_reason::unknown_key);
        return nullptr;
    }
    return admit(conn, m, *v, raw, now, header_word);
}

// The checks of a frame classified to v: TTL (MPLS) and traffic contract. Inlined into
// classify: a call per frame is measurable on the point-to-point path.
[[gnu::always_inline]] inline const vc* worker::admit(const connection_entry& conn, rte_mbuf* m,
                                                      const vc& v, uint32_t raw, uint64_t now,
                                                      uint32_t* header_word) noexcept {
    count_vc(v, m);
    if (conn.media == media_kind::mpls) {
        if ((raw & 0xff) <= 1) [[unlikely]] {
            drop_classified(m, v, drop_reason::ttl_expired);
            return nullptr;
        }
        *header_word = raw;
    } else {
        *header_word = raw >> 16; // the TCI
    }
    if (!conforms(v, m, now)) {
        drop_classified(m, v, drop_reason::policed);
        return nullptr;
    }
    return &v;
}

template <typename Rewrite>
uint32_t worker::replicate(rte_mbuf* m, const vc& v, const party_set& parties,
                           Rewrite rewrite) noexcept {
    const uint32_t n = parties.size();
    const uint32_t len = rte_pktmbuf_pkt_len(m);
    if (n == 0) [[unlikely]] {
        // A published call always has a party (the last-party rule); treat the impossible
        // as a miss rather than leak the frame.
        drop(m, drop_reason::unknown_key);
        return 0;
    }
    const bool large = len > copy_whole_max && header_pool_ != nullptr &&
                       rte_pktmbuf_data_len(m) > replica_header_len;
    if (large && n > 1 && n <= shared_payload_max && m->nb_segs == 1 && parties.all_take_chains() &&
        replicate_shared(m, parties, rewrite)) {
        return n - 1;
    }
    // Whole copies of a small one-segment frame: their buffers taken raw in one bulk get (the
    // mempool cache is visited once, not once per copy) and set up by init_replica. Any copy
    // beyond those, or all of them when the bulk get fails, is made one at a time.
    constexpr uint32_t bulk_max = 64;
    rte_mbuf* bulk[bulk_max];
    uint32_t bulk_count = 0, bulk_used = 0;
    // A frame of one line or less is read once, and each copy is that whole line written at
    // once (bytes past the frame's end included: both buffers have the room), instead of a
    // copy of a length known only at run time per party.
    line_image line;
    bool copy_line = false;
    if (n > 1 && !large && m->nb_segs == 1 && len <= copy_whole_max) {
        const uint32_t want = std::min(n - 1, bulk_max);
        if (rte_mempool_get_bulk(replica_pool_, reinterpret_cast<void**>(bulk), want) == 0) {
            bulk_count = want;
            copy_line = len <= line_image::size && replica_line_room_ &&
                        uint32_t(m->buf_len - m->data_off) >= line_image::size;
            if (copy_line) {
                line.load(rte_pktmbuf_mtod(m, const uint8_t*));
            }
        }
    }
    // Copies are taken from the untouched original; the last party gets the original itself,
    // rewritten in place. Each goes to its port's TX buffer as it is made, in party order: a
    // copy's own work hides the buffer's count (unlike a point-to-point frame's), so collecting
    // copies for transmit_frames would buy nothing.
    for (uint32_t i = 0; i < n; ++i) {
        const party& p = parties[i];
        rte_mbuf* out = m;
        if (i + 1 < n) {
            if (bulk_used < bulk_count) {
                out = bulk[bulk_used++];
                if (copy_line) {
                    init_replica(out, m->port, len);
                    line.store(rte_pktmbuf_mtod(out, uint8_t*));
                } else {
                    fill_copy(out, m);
                }
            } else {
                out = large && p.takes_chains ? chained_replica(m) : whole_copy(m);
            }
            if (out == nullptr) [[unlikely]] {
                counters_.drop(drop_reason::no_mbuf);
                if (vc_slots_ != nullptr) {
                    vc_slots_[v.stats_slot].drops.add(1);
                }
                if (party_slots_ != nullptr) {
                    party_slots_[p.stats_slot].drops.add(1);
                }
                continue;
            }
        }
        uint8_t* frame = rte_pktmbuf_mtod(out, uint8_t*);
        wire::write_macs(frame, p.dst_mac, p.src_mac);
        rewrite(frame, p);
        transmit(p.tx_port, out);
        count_party(p, len);
    }
    return n - 1;
}

// Every party gets a header mbuf chained to m itself (worker.hh: replication by size). False,
// with nothing changed, when the header pool cannot give one to every party: the caller then
// copies party by party.
template <typename Rewrite>
bool worker::replicate_shared(rte_mbuf* m, const party_set& parties, Rewrite rewrite) noexcept {
    const uint32_t n = parties.size();
    rte_mbuf* headers[shared_payload_max];
    if (rte_pktmbuf_alloc_bulk(header_pool_, headers, n) != 0) [[unlikely]] {
        return false;
    }
    const uint32_t len = rte_pktmbuf_pkt_len(m);
    // Every reference is set before the first copy is handed to a port (a port may free what
    // it is given at once). The only reference is ours: a plain store, no atomic increment.
    // The header's bytes stay where they are (adj moves the data offset only), and the buffer
    // lives until the last copy is freed, which is after the last header is filled.
    const uint8_t* original = rte_pktmbuf_mtod(m, const uint8_t*);
    rte_mbuf_refcnt_set(m, uint16_t(n));
    rte_pktmbuf_adj(m, replica_header_len);
    for (uint32_t i = 0; i < n; ++i) {
        const party& p = parties[i];
        rte_mbuf* h = headers[i];
        chain_header(h, original, m, m->port);
        uint8_t* frame = rte_pktmbuf_mtod(h, uint8_t*);
        wire::write_macs(frame, p.dst_mac, p.src_mac);
        rewrite(frame, p);
        transmit(p.tx_port, h);
        count_party(p, len);
    }
    return true;
}

// A new single-segment mbuf with all of m's bytes. The common case (m in one segment) is an
// allocation and one memcpy; a chained m takes DPDK's general copy.
rte_mbuf* worker::whole_copy(const rte_mbuf* m) noexcept {
    if (m->nb_segs != 1) [[unlikely]] {
        return rte_pktmbuf_copy(m, replica_pool_, 0, UINT32_MAX);
    }
    rte_mbuf* c = rte_mbuf_raw_alloc(replica_pool_);
    if (c == nullptr) [[unlikely]] {
        return nullptr;
    }
    if (rte_pktmbuf_data_len(m) > c->buf_len - std::min<uint16_t>(RTE_PKTMBUF_HEADROOM, c->buf_len))
        [[unlikely]] {
        rte_mbuf_raw_free(c); // a frame larger than the replica pool's buffers
        return rte_pktmbuf_copy(m, replica_pool_, 0, UINT32_MAX);
    }
    return fill_copy(c, m);
}

// c (raw from its pool, room enough) becomes a copy of the one-segment m.
rte_mbuf* worker::fill_copy(rte_mbuf* c, const rte_mbuf* m) noexcept {
    const uint16_t len = rte_pktmbuf_data_len(m);
    init_replica(c, m->port, len);
    rte_memcpy(rte_pktmbuf_mtod(c, uint8_t*), rte_pktmbuf_mtod(m, const uint8_t*), len);
    return c;
}

// What rte_pktmbuf_reset would leave in c, with its length set: a raw mbuf already has its
// buffer, refcnt 1, one segment and no next (rte_mbuf_raw_alloc), so those are not written.
// Not rte_pktmbuf_alloc_bulk's reset then three more stores: every field is written once.
void worker::init_replica(rte_mbuf* c, uint16_t port, uint32_t len) noexcept {
    c->data_off = std::min<uint16_t>(RTE_PKTMBUF_HEADROOM, c->buf_len);
    c->port = port;
    c->ol_flags &= RTE_MBUF_F_EXTERNAL;
    c->packet_type = 0;
    c->pkt_len = len;
    c->data_len = uint16_t(len);
    c->vlan_tci = 0;
    c->vlan_tci_outer = 0;
    c->tx_offload = 0;
}

// A header mbuf with a copy of m's first replica_header_len bytes (the caller rewrites them),
// chained to an indirect mbuf over the rest of m. m itself must not be rewritten before this
// (the last party's in-place rewrite comes after every replica), and its payload is shared:
// the indirect mbuf holds a reference that DPDK drops when the replica is freed after TX.
rte_mbuf* worker::chained_replica(rte_mbuf* m) noexcept {
    rte_mbuf* header = rte_pktmbuf_alloc(header_pool_);
    if (header == nullptr) [[unlikely]] {
        return nullptr;
    }
    rte_mbuf* payload = rte_pktmbuf_clone(m, payload_ref_pool_); // one per segment of m
    if (payload == nullptr) [[unlikely]] {
        rte_pktmbuf_free(header);
        return nullptr;
    }
    rte_pktmbuf_adj(payload, replica_header_len);
    chain_header(header, rte_pktmbuf_mtod(m, const uint8_t*), payload, m->port);
    return header;
}

// h (fresh, empty) becomes the first segment of a copy: the replica_header_len bytes at
// `bytes` (the caller rewrites them), followed by rest.
void worker::chain_header(rte_mbuf* h, const uint8_t* bytes, rte_mbuf* rest,
                          uint16_t port) noexcept {
    std::memcpy(rte_pktmbuf_mtod(h, uint8_t*), bytes, replica_header_len);
    h->data_len = replica_header_len;
    h->pkt_len = replica_header_len + rest->pkt_len;
    h->nb_segs = uint16_t(1 + rest->nb_segs);
    h->next = rest;
    h->port = port;
}

// One port's frames in a row are appended with the buffer's count in a register: appending
// frame by frame through transmit() made each frame wait for the store of the last one's count
// (a store-to-load chain through memory on every frame).
void worker::transmit_frames(rte_mbuf* const* frames, const uint16_t* ports, uint16_t from,
                             uint16_t to) noexcept {
    uint16_t j = from;
    while (j < to) {
        const uint16_t port = ports[j];
        if (port == no_port) {
            ++j;
            continue;
        }
        tx_buffer& b = tx_[port];
        uint16_t count = b.count;
        do {
            b.pkts[count++] = frames[j++];
            if (count == tx_burst_size) [[unlikely]] {
                b.count = count;
                flush_port(port);
                count = 0;
            }
        } while (j < to && ports[j] == port);
        b.count = count;
        if (count != 0) {
            tx_pending_ |= uint64_t(1) << port;
        }
    }
}

void worker::flush_port(uint16_t port) noexcept {
    tx_buffer& b = tx_[port];
    uint64_t bytes = 0;
    for (uint16_t i = 0; i < b.count; ++i) {
        bytes += rte_pktmbuf_pkt_len(b.pkts[i]);
    }
    const uint16_t sent = rte_eth_tx_burst(port, tx_queue_, b.pkts, b.count);
    if (sent < b.count) [[unlikely]] {
        // A full TX queue is a drop, never a spin: waiting here would stall every other port.
        for (uint16_t i = sent; i < b.count; ++i) {
            bytes -= rte_pktmbuf_pkt_len(b.pkts[i]);
        }
        rte_pktmbuf_free_bulk(b.pkts + sent, b.count - sent);
        counters_.drop(drop_reason::tx_full, b.count - sent);
    }
    port_counters& pc = counters_.port[port];
    pc.tx_packets.add(sent);
    pc.tx_bytes.add(bytes);
    b.count = 0;
    tx_pending_ &= ~(uint64_t(1) << port);
}

void worker::flush_all() noexcept {
    while (tx_pending_ != 0) {
        flush_port(static_cast<uint16_t>(__builtin_ctzll(tx_pending_)));
    }
}

} // namespace vcplane
