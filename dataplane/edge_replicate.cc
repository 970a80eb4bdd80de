// The edge replicator: copies of a frame for a party set with edge actions (replicate.hh).
#include <algorithm>
#include <cstring>

#include <rte_memcpy.h>

#include "dataplane/edge.hh"
#include "dataplane/replicate.hh"

namespace vcplane {

void replicator::refused(const vc& v, const party& p, drop_reason why) noexcept {
    counters_.drop(why);
    objects_.vc_drop(v.stats_slot);
    objects_.party_drop(p.stats_slot);
}

// A frame whose ingress header no party can read: each party's copy is refused.
void replicator::refused_all(const vc& v, const party_set& parties, drop_reason why) noexcept {
    for (const party& p : parties) {
        refused(v, p, why);
    }
}

// A single-segment copy when the whole of it fits one replica buffer: one allocation and two
// memcpy. Otherwise DPDK's general copy of the rest (any segments, chained as the pool's
// buffers need), with the header prepended in its headroom.
rte_mbuf* replicator::edge_copy(const rte_mbuf* m, const uint8_t* header, uint32_t header_len,
                                uint32_t consumed) noexcept {
    const uint32_t len = rte_pktmbuf_pkt_len(m) - consumed + header_len;
    if (m->nb_segs == 1) {
        rte_mbuf* c = rte_mbuf_raw_alloc(replica_pool_);
        if (c == nullptr) [[unlikely]] {
            return nullptr;
        }
        const uint16_t headroom = std::min<uint16_t>(RTE_PKTMBUF_HEADROOM, c->buf_len);
        if (len <= uint32_t(c->buf_len - headroom)) [[likely]] {
            init_copy(c, m->port, len);
            uint8_t* to = rte_pktmbuf_mtod(c, uint8_t*);
            std::memcpy(to, header, header_len);
            rte_memcpy(to + header_len, rte_pktmbuf_mtod(m, const uint8_t*) + consumed,
                       len - header_len);
            return c;
        }
        rte_mbuf_raw_free(c);
    }
    rte_mbuf* c = rte_pktmbuf_copy(m, replica_pool_, consumed, UINT32_MAX);
    if (c == nullptr) [[unlikely]] {
        return nullptr;
    }
    auto* to = reinterpret_cast<uint8_t*>(rte_pktmbuf_prepend(c, uint16_t(header_len)));
    if (to == nullptr) [[unlikely]] {
        rte_pktmbuf_free(c);
        return nullptr;
    }
    std::memcpy(to, header, header_len);
    return c;
}

// Each copy is built from the untouched original; the last party's is the original itself,
// its first bytes replaced in place (its headroom grown into, or its start moved on).
uint32_t replicator::replicate_edge(rte_mbuf* m, const vc& v, const party_set& parties,
                                    media_kind in) noexcept {
    const uint32_t n = parties.size();
    if (n == 0) [[unlikely]] {
        rte_pktmbuf_free(m);
        counters_.drop(drop_reason::unknown_key);
        return 0;
    }
    uint8_t header[edge::max_header];
    edge::cut cut;
    drop_reason why;
    edge::ingress in_header;
    if (!edge::read_ingress(rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m),
                            rte_pktmbuf_pkt_len(m), in, &in_header, &why)) [[unlikely]] {
        refused_all(v, parties, why);
        rte_pktmbuf_free(m);
        return 0;
    }
    party_set::cursor next(parties, first_party(v, parties));
    for (uint32_t i = 0; i + 1 < n; ++i, next.advance()) {
        const party& p = *next;
        if (!edge::build_header(in_header, p, header, &cut, &why)) {
            refused(v, p, why);
            continue;
        }
        rte_mbuf* c = edge_copy(m, header, cut.header_len, cut.consumed);
        if (c == nullptr) [[unlikely]] {
            lost(v, p);
            continue;
        }
        tx_.transmit(p.tx_port, c);
        objects_.party_copy(p.stats_slot, rte_pktmbuf_pkt_len(c));
    }
    const party& last = *next;
    if (!edge::build_header(in_header, last, header, &cut, &why)) {
        refused(v, last, why);
        rte_pktmbuf_free(m);
        return n - 1;
    }
    // Built before m changes: the header may hold bytes of the part it replaces.
    uint8_t* to;
    if (cut.header_len >= cut.consumed) {
        to = reinterpret_cast<uint8_t*>(
            rte_pktmbuf_prepend(m, uint16_t(cut.header_len - cut.consumed)));
    } else {
        to =
            reinterpret_cast<uint8_t*>(rte_pktmbuf_adj(m, uint16_t(cut.consumed - cut.header_len)));
    }
    if (to == nullptr) [[unlikely]] {
        // No headroom to grow into: a copy, and the original goes.
        rte_mbuf* c = edge_copy(m, header, cut.header_len, cut.consumed);
        rte_pktmbuf_free(m);
        if (c == nullptr) {
            lost(v, last);
            return n - 1;
        }
        m = c;
    } else {
        std::memcpy(to, header, cut.header_len);
    }
    tx_.transmit(last.tx_port, m);
    objects_.party_copy(last.stats_slot, rte_pktmbuf_pkt_len(m));
    return n - 1;
}

} // namespace vcplane
