#pragma once
// The forwarding tables the workers read (rules: dataplane/rcu.hh).
//
//   forwarding_table.by_port[rx port] --> connection_entry   (one per claimed port)
//       connection_entry.keys[label or VID] --> vc           (two-level index, see key_table;
//                                                             usually in the slot's own line)
//           vc.parties --> party_set                         (immutable sequence of egress
//                                                             copies: flat, or chunked)
//
// Every arrow is an RCU-published pointer: a worker loads it with rcu_load(), the
// control thread stores it with rcu_assign_pointer(). Objects behind the arrows are immutable
// once published; changing a call means publishing a new party_set (or vc) and retiring the
// old one after a grace period. All writer functions below are for the control thread only.

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>

#include <rte_config.h>
#include <rte_meter.h>

#include "dataplane/counters.hh"

#include "dataplane/rcu.hh"
#include "vocab/media.hh"
#include "vocab/party_action.hh"

namespace vcplane {

// One egress copy of a call: everything a worker needs to write that copy's headers.
struct party {
    uint8_t dst_mac[6]; // the party's next hop
    uint8_t src_mac[6]; // the egress port's own MAC
    uint32_t out_key;   // out-label or out-VID (0 on a port connection)
    uint16_t tx_port;
    bool takes_chains; // the egress port sends multi-segment frames (worker.hh: replicas)
    // What the copy becomes (vocab/party_action.hh), and the call's encapsulation as the
    // edge actions need it (dataplane/edge.hh).
    uint8_t action_code : 4;  // a party_action
    uint8_t control_word : 1; // encap writes one, decap expects one
    uint8_t ttl_pipe : 1;     // RFC 3443 pipe model (else uniform)
    uint32_t stats_slot;      // its per-party counters (dataplane/counter_slots.hh)

    party_action action() const noexcept { return party_action(action_code); }
    bool edge() const noexcept { return is_edge_action(action()); }
};
static_assert(sizeof(party) == 24);

// A party holds its two MACs in the frame's order, so one copy of 12 bytes of its
// representation writes both into the frame's Ethernet header.
static_assert(offsetof(party, src_mac) == offsetof(party, dst_mac) + 6);
inline void write_party_macs(uint8_t* frame, const party& p) noexcept {
    std::memcpy(frame, reinterpret_cast<const uint8_t*>(&p) + offsetof(party, dst_mac), 12);
}

// An immutable sequence of parties. A set with an edge party (party::edge) is served by the
// edge replicator (dataplane/edge.hh) as a whole; one of swaps or retags only by the core
// path. Up to chunk_parties of them are one flat array in one
// block, or held inside their vc's block (vc::create): such an embedded set is freed with the
// vc, and destroy() leaves it alone. A larger set is a table of chunks of at most
// chunk_parties each, in order; chunks are immutable too and shared between a set and the
// sets made from it by create_changed, so that adding or dropping a party of a large call
// copies one or two chunks and the table, not every party. A set is chunked exactly when it
// holds more than chunk_parties.
//
// Sets and chunks are made and freed on the control thread only (a set a grace period after
// it was replaced), so a chunk's count of the sets holding it is a plain integer.
class party_set {
public:
    static constexpr uint32_t chunk_parties = 64;
    static constexpr uint32_t max_size = UINT16_MAX;

    static party_set* create(std::span<const party> parties); // at most max_size parties
    // A copy of `from` with `added` appended (added null: none) and the party at `removed`
    // left out (removed >= from.size(): none), in order. A flat result is one allocation and
    // one copy of the rest; a chunked one shares every chunk the change leaves alone (a chunk
    // left small is merged with a neighbour, so a set of n parties has at most 2n/64 + 1).
    static party_set* create_changed(const party_set& from, const party* added, uint32_t removed);
    // A copy of `parties` (at most chunk_parties) built in `mem` (footprint(n) bytes, aligned
    // for party), owned by whoever owns mem.
    static party_set* create_embedded(void* mem, std::span<const party> parties) noexcept;
    static void destroy(party_set* set) noexcept;         // no-op for null and embedded sets
    static constexpr size_t footprint(size_t n) noexcept; // of a flat set

    // Party arrays alive in the process, embedded ones not included (they live and die with
    // their vc), and chunks alive. Control thread only: they are made and freed there.
    static size_t live() noexcept { return live_; }
    static size_t chunks_live() noexcept { return chunks_live_; }
    // Held in its vc's block: whoever replaces it must not destroy it (the vc frees it).
    bool embedded() const noexcept { return embedded_ != 0; }
    bool chunked() const noexcept { return chunked_ != 0; }
    uint32_t chunk_count() const noexcept { return chunked_ ? stored_chunk_count() : 0; }

    uint32_t size() const noexcept { return count_; }
    // Every party's port sends multi-segment frames (party::takes_chains).
    bool all_take_chains() const noexcept { return chain_takers_ == count_; }
    // Some party's action is an edge action (party::edge).
    bool edge() const noexcept { return edge_parties_ != 0; }
    // One party, swapped or retagged: the core path's point-to-point case, in one compare
    // (count_ and edge_parties_ are one 32-bit word).
    bool core_point_to_point() const noexcept { return count_ == 1 && edge_parties_ == 0; }
    // The party of a one-party set (flat: a set is chunked only beyond chunk_parties).
    const party& only() const noexcept { return data()[0]; }
    const party& operator[](uint32_t i) const noexcept {
        if (!chunked_) [[likely]] {
            return data()[i];
        }
        return chunked_at(i);
    }

    // Walks a set of either shape from party `i`, wrapping round after the last: what the
    // worker's copy loops use (a chunk boundary costs one branch taken per chunk).
    class cursor {
    public:
        cursor(const party_set& set, uint32_t i) noexcept
            : set_(&set) {
            if (!set.chunked_) [[likely]] {
                at_ = set.data() + i;
                end_ = set.data() + set.count_;
            } else {
                seek_chunk(i);
            }
        }
        const party& operator*() const noexcept { return *at_; }
        void advance() noexcept {
            if (++at_ == end_) [[unlikely]] {
                next_run();
            }
        }

    private:
        void seek_chunk(uint32_t i) noexcept;
        void next_run() noexcept;
        const party_set* set_;
        const party* at_;
        const party* end_;
        uint32_t chunk_ = 0; // the chunk at_ is in (chunked sets)
    };
    // In order, for a range-for.
    class iterator {
    public:
        iterator(const party_set& set, uint32_t left) noexcept
            : at_(set, 0)
            , left_(left) {}
        const party& operator*() const noexcept { return *at_; }
        iterator& operator++() noexcept {
            at_.advance();
            --left_;
            return *this;
        }
        bool operator!=(const iterator& o) const noexcept { return left_ != o.left_; }

    private:
        cursor at_;
        uint32_t left_;
    };
    iterator begin() const noexcept { return {*this, count_}; }
    iterator end() const noexcept { return {*this, 0}; }

private:
    struct chunk {
        uint32_t size;
        uint32_t holders; // sets that hold it
        party items[chunk_parties];
    };
    // A chunked set's header is followed by the number of its chunks (a 64-bit word, for the
    // pointers' alignment) and their pointers, in order.
    static constexpr size_t chunked_footprint(uint32_t chunks) noexcept {
        return sizeof(party_set) + sizeof(uint64_t) + chunks * sizeof(chunk*);
    }

    // The parties' properties a set keeps a count of.
    struct census {
        uint32_t chain_takers = 0;
        uint32_t edge = 0;
        void add(const party& p, int n = 1) noexcept {
            chain_takers += p.takes_chains ? n : 0;
            edge += p.edge() ? n : 0;
        }
        static census of(std::span<const party> parties) noexcept {
            census c;
            for (const party& p : parties) {
                c.add(p);
            }
            return c;
        }
    };
    explicit party_set(uint32_t n, census c, bool embedded, bool chunked)
        : count_(uint16_t(n))
        , edge_parties_(uint16_t(c.edge))
        , chain_takers_(uint16_t(c.chain_takers))
        , embedded_(embedded)
        , chunked_(chunked) {}
    static party_set* build(void* mem, std::span<const party> parties, bool embedded) noexcept;
    static party_set* build_chunked(std::span<const party> parties) noexcept;
    // A chunked set of n parties over `count` chunks, the table to be filled by the caller.
    static party_set* allocate_chunked(uint32_t n, census c, uint32_t count) noexcept;
    static party_set* change_chunked(const party_set& from, const party* added,
                                     uint32_t removed) noexcept;
    // A change to a chunked set: chunks [first, first + span) of the old set give way to
    // `fresh` (none when the change empties them). ok is false when no chunk could be had.
    struct chunk_edit {
        uint32_t first = 0;
        uint32_t span = 0;
        chunk* fresh = nullptr;
        bool ok = true;
    };
    static chunk_edit edit_removing(const party_set& from, uint32_t removed,
                                    census& tally) noexcept;
    static chunk_edit edit_adding(const party_set& from, const party& added,
                                  census& tally) noexcept;
    static chunk* allocate_chunk() noexcept;
    static void release(chunk* c) noexcept;
    // Room for n parties (flat), counted live (null: out of memory, or a failing create
    // asked for).
    static void* allocate(size_t bytes) noexcept;
    const party* data() const noexcept { return reinterpret_cast<const party*>(this + 1); }
    party* data() noexcept { return reinterpret_cast<party*>(this + 1); }
    uint32_t stored_chunk_count() const noexcept {
        return uint32_t(*reinterpret_cast<const uint64_t*>(this + 1));
    }
    chunk* const* chunks() const noexcept {
        return reinterpret_cast<chunk* const*>(reinterpret_cast<const uint64_t*>(this + 1) + 1);
    }
    chunk** chunks() noexcept {
        return reinterpret_cast<chunk**>(reinterpret_cast<uint64_t*>(this + 1) + 1);
    }
    const party& chunked_at(uint32_t i) const noexcept;

    uint16_t count_;
    uint16_t edge_parties_;
    uint16_t chain_takers_;
    uint8_t embedded_;
    uint8_t chunked_;
    static inline size_t live_ = 0;
    static inline size_t chunks_live_ = 0;
};
static_assert(sizeof(party_set) == 8 && sizeof(party_set) % alignof(party) == 0);
constexpr size_t party_set::footprint(size_t n) noexcept {
    return sizeof(party_set) + n * sizeof(party);
}

// What one worker keeps for one VC: its share of the traffic-contract meter and counters.
// Written by that worker only (the meter's state changes with every packet it checks).
struct alignas(RTE_CACHE_LINE_SIZE) vc_worker_state {
    rte_meter_trtcm meter;
    counter policed;
};

// A VC's traffic contract: one profile, metered by each worker against its own state
// (per_worker[worker id]). Freed with its vc (vc::destroy).
struct vc_meter {
    rte_meter_trtcm_profile profile;
    std::unique_ptr<vc_worker_state[]> per_worker;
};

class key_table;

// A virtual circuit as the workers see it: 24 bytes, so that with a one-party array beside it
// it fits in what is left of its key's index slot (key_table::slot).
struct vc {
    uint32_t key : 30;         // label or VID on the ingress connection
    uint32_t at_home : 1 = 0;  // built in its key's index slot (key_table), not a block of its own
    uint32_t fair : 1 = 0;     // copies in rotated party order (traffic_contract::fair)
    uint32_t stats_slot;       // its per-VC counters (dataplane/counter_slots.hh); kept by a
                               // vc that replaces it (a new traffic contract)
    party_set* parties;        // RCU-published; never null once the vc is published
    vc_meter* meter = nullptr; // the traffic contract; null when the call has none

    // A vc for `key` of `table`. It takes `parties` over (the caller keeps it only when create
    // fails, returning null): a set that fits beside the vc (one party) is copied there and the
    // original destroyed. The vc is built in the key's own index slot when that is free (the
    // usual case: a frame on a large, cold table then waits for one cache miss, not two or
    // three), else in a cache-line block of its own (the slot still holds the vc it replaces,
    // or one retired less than a grace period ago).
    static constexpr size_t inline_parties = 1;
    static vc* create(key_table& table, uint32_t key, uint32_t stats_slot, party_set* parties);
    // Frees v's current party set (unless embedded), its meter and its storage: its own block,
    // or the room in its index slot, given back to the table (a table destroyed before the vcs
    // in its slots leaves those leaves to the last of them).
    static void destroy(vc* v) noexcept;
    // Whether `set` (this vc's parties) is the one beside it, in its line. The same answer as
    // set->embedded(), without reading the set's own line (the worker asks it before that
    // line is requested); create() builds the embedded set right at this + 1.
    bool holds_inline(const party_set* set) const noexcept {
        return static_cast<const void*>(set) == static_cast<const void*>(this + 1);
    }
};
static_assert(sizeof(vc) == 24);

// Key (MPLS label or VLAN ID) -> vc, for one ingress connection.
//
// Two levels: a root of leaf pointers indexed by the key's high bits, and leaves of 1024
// slots indexed by its low 10 bits. A slot is one cache line: the RCU-published pointer to the
// key's vc, and room for the vc itself with a one-party array (vc::create builds it there
// when it can). So a lookup is the root (small, cached) and one line, for 16 VCs or for the
// whole 2^20 label space alike; a vc that had to be built elsewhere (it replaced one still in
// the slot) costs a second line. Memory grows with the leaves in use (64 KiB per 1024
// consecutive keys, plus an 8 KiB root for MPLS). Leaves, once allocated, live as long as the
// table, so a worker never sees a leaf disappear under it.
//
// A slot's room is written only while no worker can see it: it is handed out (claim_home)
// only when no vc lives there, and a vc that lived there gives it back (vc::destroy) only once
// it is freed, a grace period after it was unpublished or replaced.
class key_table {
public:
    static constexpr unsigned leaf_bits = 10;
    static constexpr uint32_t leaf_size = 1u << leaf_bits;

    struct alignas(RTE_CACHE_LINE_SIZE) slot {
        vc* current; // RCU-published: the key's vc, or null
        alignas(vc) unsigned char home[RTE_CACHE_LINE_SIZE - sizeof(vc*)];
    };
    static_assert(sizeof(slot) == RTE_CACHE_LINE_SIZE);
    static_assert(sizeof(vc) + party_set::footprint(vc::inline_parties) <= sizeof(slot::home));

    explicit key_table(uint32_t key_limit); // keys are < key_limit
    ~key_table();
    key_table(const key_table&) = delete;
    key_table& operator=(const key_table&) = delete;

    // Worker side. Keys out of range are a miss, not an error.
    vc* lookup(uint32_t key) const noexcept { return vc_in(slot_of(key)); }
    // Worker side: the vc in a slot slot_of() returned (null: none).
    static vc* vc_in(const slot* s) noexcept {
        return s != nullptr ? rcu_load(s->current) : nullptr;
    }

    // Worker side: key's slot (null: no leaf there), for a prefetch.
    const slot* slot_of(uint32_t key) const noexcept {
        const uint32_t hi = key >> leaf_bits;
        if (hi >= leaf_count_) [[unlikely]] {
            return nullptr;
        }
        const leaf* l = rcu_load(leaves_[hi]);
        return l != nullptr ? &l->slots[key & (leaf_size - 1)] : nullptr;
    }
    // Keys published. Written by the control thread, read by workers (relaxed: a hint for
    // how to fetch, never for correctness).
    uint32_t size() const noexcept { return __atomic_load_n(&size_, __ATOMIC_RELAXED); }

    // Control side. publish() returns false when the key is out of range or the leaf could
    // not be allocated; it replaces whatever was there (the caller retires the old vc).
    bool publish(uint32_t key, vc* v);
    vc* unpublish(uint32_t key) noexcept; // returns the vc that was there (to retire)
    vc* get(uint32_t key) const noexcept { return lookup(key); }
    uint32_t key_limit() const noexcept { return leaf_count_ << leaf_bits; }
    size_t leaves_in_use() const noexcept;
    size_t memory_bytes() const noexcept;
    static constexpr size_t leaf_bytes() noexcept { return sizeof(leaf); }
    // The room in key's slot for a vc, claimed; null when a vc lives there (or lived there less
    // than a grace period ago), the key is out of range or its leaf cannot be allocated.
    void* claim_home(uint32_t key);
    // Gives back the room of a vc built in its slot (vc::destroy, after v's destructor).
    static void release_home(const vc* v, uint32_t key) noexcept;

private:
    struct leaf {
        slot slots[leaf_size];
        // Control side only: which slots' room holds a vc, and whether the table is gone
        // (then the last vc to leave frees the leaf).
        uint64_t home_used[leaf_size / 64];
        bool orphaned;
        bool holds_vcs() const noexcept;
    };
    leaf* leaf_for(uint32_t key); // allocated and published on first use; null: out of range
    void count(int delta) noexcept {
        __atomic_store_n(&size_, uint32_t(int64_t(size_) + delta), __ATOMIC_RELAXED);
    }
    uint32_t leaf_count_;
    uint32_t size_ = 0;
    std::unique_ptr<leaf*[]> leaves_;
};

// One claimed port as the workers see it.
struct connection_entry {
    connection_entry(media_kind m, uint16_t port_id, const uint8_t port_mac[6]);

    media_kind media;
    uint16_t port;
    uint8_t mac[6];
    key_table keys;
};

struct forwarding_table {
    std::array<connection_entry*, RTE_MAX_ETHPORTS> by_port{};

    connection_entry* connection(uint16_t port) const noexcept { return rcu_load(by_port[port]); }
};

} // namespace vcplane
