#include "dataplane/replicate.hh"

#include <algorithm>
#include <cstring>

#include <rte_memcpy.h>
#ifdef __AVX2__
#include <immintrin.h>
#endif

#include "dataplane/rewrite.hh"

namespace vcplane {

namespace {

// A frame's first cache line, read once and written whole into each copy: in two registers
// where the core has them (a copy through memory would read the image back for every party).
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

replicator::replicator(rte_mempool* replica_pool, tx_buffers& tx, object_counters& objects,
                       worker_counters& counters) noexcept
    : tx_(tx)
    , objects_(objects)
    , counters_(counters)
    , replica_pool_(replica_pool)
    , line_pool_(line_pool_of(nullptr, replica_pool)) {}

rte_mempool* replicator::line_pool_of(rte_mempool* headers, rte_mempool* replicas) noexcept {
    for (rte_mempool* pool : {headers, replicas}) {
        if (pool != nullptr &&
            rte_pktmbuf_data_room_size(pool) >= RTE_PKTMBUF_HEADROOM + line_image::size) {
            return pool;
        }
    }
    return nullptr;
}

template <typename Rewrite>
uint32_t replicator::replicate(rte_mbuf* m, const vc& v, const party_set& parties,
                               Rewrite rewrite) noexcept {
    const uint32_t n = parties.size();
    if (n == 0) [[unlikely]] {
        // A published call always has a party (the last-party rule); treat the impossible
        // as a miss rather than leak the frame.
        rte_pktmbuf_free(m);
        counters_.drop(drop_reason::unknown_key);
        return 0;
    }
    const uint32_t first = first_party(v, parties);
    const uint32_t len = rte_pktmbuf_pkt_len(m);
    if (len <= copy_whole_max && m->nb_segs == 1) {
        copy_small(m, v, parties, first, rewrite);
        return n - 1;
    }
    const bool shared = header_pool_ != nullptr && parties.all_take_chains();
    if (shared && m->nb_segs > 1 && n >= linear_copy_min_parties) {
        m = linearized(m);
    }
    if (!shared || rte_pktmbuf_data_len(m) <= replica_header_len ||
        !share_payload(m, v, parties, first, rewrite)) {
        copy_each(m, v, parties, first, rewrite);
    }
    return n - 1;
}

template <typename Rewrite>
[[gnu::always_inline]] inline void replicator::sender::send(rte_mbuf* out, const party& p,
                                                            Rewrite rewrite,
                                                            uint32_t len) const noexcept {
    address_copy(rte_pktmbuf_mtod(out, uint8_t*), p, rewrite);
    tx.transmit(p.tx_port, out);
    objects.party_copy(p.stats_slot, len);
}

void replicator::lost(const vc& v, const party& p) noexcept {
    counters_.drop(drop_reason::no_mbuf);
    objects_.vc_drop(v.stats_slot);
    objects_.party_drop(p.stats_slot);
}

// Copies are made from the untouched original and each handed on as it is made: a copy's own
// work hides its TX buffer's count, so collecting them for transmit_run would buy nothing.
template <typename Rewrite>
void replicator::copy_small(rte_mbuf* m, const vc& v, const party_set& parties, uint32_t first,
                            Rewrite rewrite) noexcept {
    const sender out = sender_for_frame();
    const uint32_t n = parties.size();
    const uint32_t len = rte_pktmbuf_pkt_len(m);
    // Bytes past the frame's end are copied with its line: both buffers have the room.
    const bool copy_line = len <= line_image::size && line_pool_ != nullptr &&
                           uint32_t(m->buf_len - m->data_off) >= line_image::size;
    rte_mempool* const pool = copy_line ? line_pool_ : replica_pool_;
    line_image line;
    if (copy_line && n > 1) {
        line.load(rte_pktmbuf_mtod(m, const uint8_t*));
    }
    party_set::cursor next(parties, first);
    rte_mbuf* chunk[copy_chunk];
    for (uint32_t chunk_first = 0; chunk_first + 1 < n; chunk_first += copy_chunk) {
        const uint32_t count = std::min(copy_chunk, n - 1 - chunk_first);
        // Raw buffers set up by init_copy; when the pool cannot give the whole chunk, each
        // copy of it is tried on its own.
        const bool bulk = rte_mempool_get_bulk(pool, reinterpret_cast<void**>(chunk), count) == 0;
        for (uint32_t i = 0; i < count; ++i) {
            const party& p = *next;
            next.advance();
            rte_mbuf* c;
            if (!bulk) {
                c = whole_copy(m);
                if (c == nullptr) [[unlikely]] {
                    lost(v, p);
                    continue;
                }
            } else if (copy_line) {
                c = chunk[i];
                init_copy(c, m->port, len);
                line.store(rte_pktmbuf_mtod(c, uint8_t*));
            } else {
                c = fill_copy(chunk[i], m);
            }
            out.send(c, p, rewrite, len);
        }
    }
    out.send(m, *next, rewrite, len);
}

// Headers are taken a chunk at a time, each chunk sent before the next is taken, so that the
// copies the ports free go back to the pool's per-lcore cache and are taken again while their
// lines are warm (all of a large call's headers at once would empty the cache and cycle through
// the whole pool). False, with nothing changed, when not even the first chunk can be had.
template <typename Rewrite>
bool replicator::share_payload(rte_mbuf* m, const vc& v, const party_set& parties, uint32_t first,
                               Rewrite rewrite) noexcept {
    const sender out = sender_for_frame();
    const uint32_t n = parties.size();
    rte_mbuf* headers[copy_chunk];
    uint32_t count = std::min(copy_chunk, n);
    if (rte_pktmbuf_alloc_bulk(header_pool_, headers, count) != 0) [[unlikely]] {
        return false;
    }
    const uint32_t len = rte_pktmbuf_pkt_len(m);
    // Every reference is set before the first copy is handed to a port, which may free what
    // it is given at once; until then the only reference is ours, so a plain store. Every
    // segment: a freed copy drops one reference on each. The header's bytes stay where they
    // are (adj moves the data offset only), and the first segment's buffer lives until the
    // last reference is dropped, after the last header is filled from it.
    const uint8_t* original = rte_pktmbuf_mtod(m, const uint8_t*);
    for (rte_mbuf* seg = m; seg != nullptr; seg = seg->next) {
        rte_mbuf_refcnt_set(seg, uint16_t(n));
    }
    rte_pktmbuf_adj(m, replica_header_len);
    party_set::cursor next(parties, first);
    uint32_t i = 0;
    while (true) {
        for (uint32_t j = 0; j < count; ++j, ++i) {
            chain_header(headers[j], original, m, m->port);
            out.send(headers[j], *next, rewrite, len);
            next.advance();
        }
        if (i == n) {
            return true;
        }
        count = std::min(copy_chunk, n - i);
        if (rte_pktmbuf_alloc_bulk(header_pool_, headers, count) != 0) [[unlikely]] {
            break;
        }
    }
    // The pool ran dry within the call: the remaining parties lose their copies, and each one's
    // reference is given back. Copies already sent may be being freed by now: an atomic
    // decrement (rte_pktmbuf_free), on this exhaustion path only.
    for (; i < n; ++i, next.advance()) {
        lost(v, *next);
        rte_pktmbuf_free(m);
    }
    return true;
}

template <typename Rewrite>
void replicator::copy_each(rte_mbuf* m, const vc& v, const party_set& parties, uint32_t first,
                           Rewrite rewrite) noexcept {
    const sender out = sender_for_frame();
    const uint32_t n = parties.size();
    const uint32_t len = rte_pktmbuf_pkt_len(m);
    const bool chains = header_pool_ != nullptr && rte_pktmbuf_data_len(m) > replica_header_len;
    party_set::cursor next(parties, first);
    for (uint32_t i = 0; i + 1 < n; ++i) {
        const party& p = *next;
        next.advance();
        rte_mbuf* c = chains && p.takes_chains ? chained_copy(m) : whole_copy(m);
        if (c == nullptr) [[unlikely]] {
            lost(v, p);
            continue;
        }
        out.send(c, p, rewrite, len);
    }
    out.send(m, *next, rewrite, len);
}

template uint32_t replicator::replicate(rte_mbuf*, const vc&, const party_set&,
                                        mpls_rewrite) noexcept;
template uint32_t replicator::replicate(rte_mbuf*, const vc&, const party_set&,
                                        vlan_rewrite) noexcept;

rte_mbuf* replicator::linearized(rte_mbuf* m) noexcept {
    const uint32_t len = rte_pktmbuf_pkt_len(m);
    if (linear_pool_ == nullptr || len > linear_room_) {
        return m;
    }
    rte_mbuf* l = rte_mbuf_raw_alloc(linear_pool_);
    if (l == nullptr) [[unlikely]] {
        return m; // shared segment by segment instead
    }
    init_copy(l, m->port, len);
    // The C library's memcpy, not rte_memcpy: it picks the widest copy the running core has
    // (the build targets a baseline x86-64), and the frame's kilobytes are what this costs.
    uint8_t* to = rte_pktmbuf_mtod(l, uint8_t*);
    for (const rte_mbuf* seg = m; seg != nullptr; seg = seg->next) {
        std::memcpy(to, rte_pktmbuf_mtod(seg, const uint8_t*), seg->data_len);
        to += seg->data_len;
    }
    rte_pktmbuf_free(m); // the worker's only reference: no atomic operation
    return l;
}

// A new single-segment mbuf with all of m's bytes: for m in one segment, an allocation and
// one memcpy; a chained m, or one larger than a replica buffer, takes DPDK's general copy.
rte_mbuf* replicator::whole_copy(const rte_mbuf* m) noexcept {
    if (m->nb_segs != 1) [[unlikely]] {
        return rte_pktmbuf_copy(m, replica_pool_, 0, UINT32_MAX);
    }
    rte_mbuf* c = rte_mbuf_raw_alloc(replica_pool_);
    if (c == nullptr) [[unlikely]] {
        return nullptr;
    }
    if (rte_pktmbuf_data_len(m) > c->buf_len - std::min<uint16_t>(RTE_PKTMBUF_HEADROOM, c->buf_len))
        [[unlikely]] {
        rte_mbuf_raw_free(c);
        return rte_pktmbuf_copy(m, replica_pool_, 0, UINT32_MAX);
    }
    return fill_copy(c, m);
}

// c (raw from its pool, room enough) becomes a copy of the one-segment m.
rte_mbuf* replicator::fill_copy(rte_mbuf* c, const rte_mbuf* m) noexcept {
    const uint16_t len = rte_pktmbuf_data_len(m);
    init_copy(c, m->port, len);
    rte_memcpy(rte_pktmbuf_mtod(c, uint8_t*), rte_pktmbuf_mtod(m, const uint8_t*), len);
    return c;
}

// A header mbuf with a copy of m's first replica_header_len bytes (the caller rewrites them),
// chained to an indirect mbuf over the rest of m. m itself must not be rewritten before this
// (the last party's in-place rewrite comes after every copy), and its payload is shared: the
// indirect mbuf holds a reference that DPDK drops when the copy is freed after TX.
rte_mbuf* replicator::chained_copy(rte_mbuf* m) noexcept {
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
void replicator::chain_header(rte_mbuf* h, const uint8_t* bytes, rte_mbuf* rest,
                              uint16_t port) noexcept {
    std::memcpy(rte_pktmbuf_mtod(h, uint8_t*), bytes, replica_header_len);
    h->data_len = replica_header_len;
    h->pkt_len = replica_header_len + rest->pkt_len;
    h->nb_segs = uint16_t(1 + rest->nb_segs);
    h->next = rest;
    h->port = port;
}

} // namespace vcplane
