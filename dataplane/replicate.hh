#pragma once
// Replication: one copy of a classified frame for every party of its VC, each with that
// party's headers (dataplane/rewrite.hh), handed to the worker's TX buffers in party order.
//
// Worker path only (docs/design.md §4): one replicator per worker, touched by its lcore alone;
// mbufs come from per-lcore-cached pools; no atomic operation is made on a frame's reference
// count (a plain store while the worker holds the only reference).
//
// By size and segments:
// - A frame up to copy_whole_max bytes in one segment: a whole new mbuf per party but the
//   last, their buffers taken raw from the replica pool copy_chunk at a time (one visit to
//   the pool's cache per chunk) and the frame's bytes copied in; the last party gets the
//   original, rewritten in place. A frame of one cache line or less is read once and the whole
//   line written into every copy, whose buffers come from the header pool when its small
//   buffers hold a line (a chunk of copies then spans a few pages and cache lines, not one
//   page a copy) and from the replica pool when that pool has none left.
// - A larger frame, of any number of segments, to parties whose ports all send chains: one
//   header mbuf per party (Ethernet header and label or tag, replica_header_len bytes, taken
//   copy_chunk at a time) chained to the original itself, whose header is cut off and every
//   segment of which gets one reference per party. No payload is copied and no second mbuf
//   made per copy; whoever frees a copy after TX drops its reference. This is DPDK's
//   ipv4_multicast example's scheme.
//   A frame of several segments for linear_copy_min_parties or more is first copied into one
//   buffer of the linear pool (when it has one and the frame fits), and that one segment is
//   shared instead: a freed copy then drops one reference, not one per segment.
// - Otherwise (a party whose port cannot send chains, or no first chunk of headers): each copy
//   but the last is a header chained to an indirect mbuf over the payload (rte_pktmbuf_clone)
//   for a port that sends chains, or a whole copy, and the last party gets the original.
//
// A call whose traffic contract is fair has each frame's copies made in an order rotated by
// one party from the last fair frame's, so that over many frames every party's copy waits as
// long as every other's; otherwise copies are made in party order.
//
// A copy that finds no buffer is lost and counted (no_mbuf, and in the VC's and party's slots);
// the other parties still get theirs.

#include <algorithm>
#include <cstdint>

#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "dataplane/counter_slots.hh"
#include "dataplane/counters.hh"
#include "dataplane/tables.hh"
#include "dataplane/tx_buffers.hh"
#include "vocab/media.hh"

namespace vcplane {

inline constexpr uint32_t copy_whole_max = 256;
inline constexpr uint32_t replica_header_len = 18; // Ethernet + one label or tag
// Buffers for copies are taken this many at a time (header mbufs and whole copies alike).
inline constexpr uint32_t copy_chunk = 64;
// From this many parties a frame of several segments is made one before it is shared: the
// frame's one memcpy then costs less than the atomic reference drop per segment that every copy
// would otherwise make when it is freed. The crossover moves with the machine (the cost of a
// locked decrement against a copy of the frame's kilobytes); perf/README.md has it.
inline constexpr uint32_t linear_copy_min_parties = 16;
// The data room of a linear buffer, after its headroom: the largest jumbo frame.
inline constexpr uint32_t linear_buffer_len = 9216;

class replicator {
public:
    // replica_pool: whole copies. tx, objects, counters: the worker's, which outlive this.
    replicator(rte_mempool* replica_pool, tx_buffers& tx, object_counters& objects,
               worker_counters& counters) noexcept;
    replicator(const replicator&) = delete;
    replicator& operator=(const replicator&) = delete;

    // Pools for chained copies of large frames: headers (data room >= replica_header_len)
    // and payload references (indirect mbufs, no data room; only the per-copy way takes them).
    // Null: every copy is whole. Before the worker is launched.
    void set_chain_pools(rte_mempool* headers, rte_mempool* payload_refs) noexcept {
        header_pool_ = headers;
        payload_ref_pool_ = payload_refs;
        line_pool_ = line_pool_of(header_pool_, replica_pool_);
    }
    // Buffers (data room >= linear_buffer_len) that frames of several segments are copied into
    // before they are shared. Null, or none free: the segments are shared as they are. Before
    // the worker is launched.
    void set_linear_pool(rte_mempool* linear) noexcept {
        linear_pool_ = linear;
        linear_room_ = linear != nullptr
                           ? uint32_t(rte_pktmbuf_data_room_size(linear)) - RTE_PKTMBUF_HEADROOM
                           : 0;
    }

    // A copy of m for every party of v (the original for the last one), handed to the TX
    // buffers. Returns the copies it tried to make, for the pass's count of work done.
    // Instantiated for mpls_rewrite and vlan_rewrite (dataplane/rewrite.hh).
    template <typename Rewrite>
    uint32_t replicate(rte_mbuf* m, const vc& v, const party_set& parties,
                       Rewrite rewrite) noexcept;

    // The same for a party set with an edge party (party_set::edge), m having entered on a
    // connection of media `in`: each party's copy is its own header (dataplane/edge.hh)
    // followed by a copy of the rest of the frame, the last party's made of the original in
    // place. A copy that its action cannot make is dropped and counted by reason; the other
    // parties still get theirs.
    uint32_t replicate_edge(rte_mbuf* m, const vc& v, const party_set& parties,
                            media_kind in) noexcept;

private:
    // The three ways above; first: the party whose copy is made first (the others follow in
    // party order, wrapping round; the last gets the original).
    template <typename Rewrite>
    void copy_small(rte_mbuf* m, const vc& v, const party_set& parties, uint32_t first,
                    Rewrite rewrite) noexcept;
    template <typename Rewrite>
    bool share_payload(rte_mbuf* m, const vc& v, const party_set& parties, uint32_t first,
                       Rewrite rewrite) noexcept;
    template <typename Rewrite>
    void copy_each(rte_mbuf* m, const vc& v, const party_set& parties, uint32_t first,
                   Rewrite rewrite) noexcept;
    // What handing copies on needs, taken into registers for one frame's copies: reached
    // through `this`, each would be read again after every byte written into a copy (a
    // char store may alias anything).
    struct sender {
        tx_buffers& tx;
        object_counters objects;
        // out becomes p's copy and goes to p's port's TX buffer; len: the frame's bytes.
        template <typename Rewrite>
        void send(rte_mbuf* out, const party& p, Rewrite rewrite, uint32_t len) const noexcept;
    };
    sender sender_for_frame() const noexcept { return {tx_, objects_}; }
    void lost(const vc& v, const party& p) noexcept; // p's copy found no buffer
    // p's copy was not made, for `why`.
    void refused(const vc& v, const party& p, drop_reason why) noexcept;
    void refused_all(const vc& v, const party_set& parties, drop_reason why) noexcept;
    // The first party of a frame's copies of v's parties: 0, or for a fair call one party
    // further on than its last frame's (a rotation of this worker's, over every fair call it
    // serves). A fair frame's first party's port is also the first whose TX buffer is handed
    // on (tx_buffers::lead_with): with parties on several ports, the port order rotates too.
    uint32_t first_party(const vc& v, const party_set& parties) noexcept {
        if (!v.fair) {
            return 0;
        }
        const uint32_t n = parties.size();
        rotation_ = rotation_ + 1 < n ? rotation_ + 1 : 0;
        tx_.lead_with((*party_set::cursor(parties, rotation_)).tx_port);
        return rotation_;
    }
    // A copy of m whose first cut.consumed bytes are replaced by the cut.header_len at header.
    rte_mbuf* edge_copy(const rte_mbuf* m, const uint8_t* header, uint32_t header_len,
                        uint32_t consumed) noexcept;

    // m in one segment of the linear pool (m freed), or m itself when it cannot be.
    rte_mbuf* linearized(rte_mbuf* m) noexcept;
    rte_mbuf* chained_copy(rte_mbuf* m) noexcept;
    rte_mbuf* whole_copy(const rte_mbuf* m) noexcept;
    static rte_mbuf* fill_copy(rte_mbuf* c, const rte_mbuf* m) noexcept;
    static void init_copy(rte_mbuf* c, uint16_t port, uint32_t len) noexcept;
    // The first of the two whose buffers hold a line after their headroom, or null.
    static rte_mempool* line_pool_of(rte_mempool* headers, rte_mempool* replicas) noexcept;
    static void chain_header(rte_mbuf* h, const uint8_t* bytes, rte_mbuf* rest,
                             uint16_t port) noexcept;

    tx_buffers& tx_;
    object_counters& objects_;
    worker_counters& counters_;
    rte_mempool* replica_pool_;
    rte_mempool* header_pool_ = nullptr;
    rte_mempool* payload_ref_pool_ = nullptr;
    rte_mempool* linear_pool_ = nullptr;
    uint32_t linear_room_ = 0;
    // Where copies of frames of one cache line or less come from first: the header pool when
    // its buffers hold a line after their headroom, else the replica pool when its do; null:
    // no line copies.
    rte_mempool* line_pool_;
    uint32_t rotation_ = 0; // the first party of the last fair call's frame
};

// What rte_pktmbuf_reset would leave in c, with its length set: a raw mbuf already has its
// buffer, refcnt 1, one segment and no next (rte_mbuf_raw_alloc), so those are not written;
// every other field is written once.
inline void replicator::init_copy(rte_mbuf* c, uint16_t port, uint32_t len) noexcept {
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

} // namespace vcplane
