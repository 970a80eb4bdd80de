// Building and changing the tables: control thread only (the workers only read them, through
// the inline lookups in tables.hh), so allocating here is allowed.
#include "dataplane/tables.hh"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <iterator>
#include <new>

#include "base/alloc_faults.hh"

namespace vcplane {

party_set* party_set::build(void* mem, std::span<const party> parties, bool embedded) noexcept {
    auto* set = new (mem)
        party_set(static_cast<uint32_t>(parties.size()), census::of(parties), embedded, false);
    std::uninitialized_copy(parties.begin(), parties.end(), set->data());
    return set;
}

void* party_set::allocate(size_t bytes) noexcept {
    if (alloc_faults::fails(alloc_faults::site::party_array)) {
        return nullptr;
    }
    return ::operator new(bytes, std::nothrow);
}

party_set::chunk* party_set::allocate_chunk() noexcept {
    void* mem = allocate(sizeof(chunk));
    if (mem == nullptr) {
        return nullptr;
    }
    ++chunks_live_;
    auto* c = static_cast<chunk*>(mem);
    c->size = 0;
    c->holders = 1;
    return c;
}

void party_set::release(chunk* c) noexcept {
    if (--c->holders == 0) {
        --chunks_live_;
        ::operator delete(c);
    }
}

party_set* party_set::allocate_chunked(uint32_t n, census c, uint32_t count) noexcept {
    void* mem = allocate(chunked_footprint(count));
    if (mem == nullptr) {
        return nullptr;
    }
    ++live_;
    auto* set = new (mem) party_set(n, c, false, true);
    *reinterpret_cast<uint64_t*>(set + 1) = count;
    return set;
}

party_set* party_set::create(std::span<const party> parties) {
    if (parties.size() > max_size) {
        return nullptr;
    }
    if (parties.size() > chunk_parties) {
        return build_chunked(parties);
    }
    void* mem = allocate(footprint(parties.size()));
    if (mem == nullptr) {
        return nullptr;
    }
    ++live_;
    return build(mem, parties, false);
}

party_set* party_set::build_chunked(std::span<const party> parties) noexcept {
    const auto n = uint32_t(parties.size());
    const uint32_t count = (n + chunk_parties - 1) / chunk_parties;
    party_set* set = allocate_chunked(n, census::of(parties), count);
    if (set == nullptr) {
        return nullptr;
    }
    chunk** to = set->chunks();
    for (uint32_t k = 0; k < count; ++k) {
        chunk* c = allocate_chunk();
        if (c == nullptr) {
            // Nothing half-made: the chunks built so far and the set go.
            for (uint32_t j = 0; j < k; ++j) {
                release(to[j]);
            }
            *reinterpret_cast<uint64_t*>(set + 1) = 0;
            destroy(set);
            return nullptr;
        }
        const uint32_t first = k * chunk_parties;
        c->size = std::min(chunk_parties, n - first);
        std::copy_n(parties.begin() + first, c->size, c->items);
        to[k] = c;
    }
    return set;
}

party_set* party_set::create_changed(const party_set& from, const party* added, uint32_t removed) {
    const bool removing = removed < from.size();
    const size_t n = from.size() + (added != nullptr ? 1 : 0) - (removing ? 1 : 0);
    if (n > max_size) {
        return nullptr;
    }
    if (from.chunked() && n > chunk_parties) {
        return change_chunked(from, added, removed);
    }
    if (from.chunked() || n > chunk_parties) {
        // The shape changes (a flat set grown past chunk_parties, a chunked one shrunk to
        // it): at most chunk_parties + 1 parties, gathered once.
        party gathered[chunk_parties + 1];
        uint32_t k = 0;
        uint32_t i = 0;
        for (const party& p : from) {
            if (i++ != removed) {
                gathered[k++] = p;
            }
        }
        if (added != nullptr) {
            gathered[k++] = *added;
        }
        return create({gathered, k});
    }
    void* mem = allocate(footprint(n));
    if (mem == nullptr) {
        return nullptr;
    }
    ++live_;
    census tally{from.chain_takers_, from.edge_parties_};
    if (removing) {
        tally.add(from[removed], -1);
    }
    if (added != nullptr) {
        tally.add(*added);
    }
    auto* set = new (mem) party_set(uint32_t(n), tally, false, false);
    party* to = set->data();
    const party* all = from.data();
    const uint32_t head = removing ? removed : from.size();
    std::uninitialized_copy(all, all + head, to);
    if (removing) {
        std::uninitialized_copy(all + removed + 1, all + from.size(), to + head);
    }
    if (added != nullptr) {
        to[n - 1] = *added;
    }
    return set;
}

// The party at `removed` taken out: its chunk is copied without it, merged with a neighbour
// when both then fit one chunk (two neighbours always hold more than chunk_parties between
// them, which bounds the chunks of a set).
party_set::chunk_edit party_set::edit_removing(const party_set& from, uint32_t removed,
                                               census& tally) noexcept {
    const uint32_t count = from.stored_chunk_count();
    chunk* const* old = from.chunks();
    uint32_t c = 0;
    uint32_t at = removed;
    while (at >= old[c]->size) {
        at -= old[c]->size;
        ++c;
    }
    tally.add(old[c]->items[at], -1);
    const uint32_t left = old[c]->size - 1;
    chunk_edit e{c, 1, nullptr, true};
    if (c + 1 < count && left + old[c + 1]->size <= chunk_parties) {
        e.span = 2;
    } else if (c > 0 && old[c - 1]->size + left <= chunk_parties) {
        e.first = c - 1;
        e.span = 2;
    }
    if (left == 0 && e.span == 1) {
        return e; // the chunk's only party: the chunk goes, nothing replaces it
    }
    e.fresh = allocate_chunk();
    if (e.fresh == nullptr) {
        e.ok = false;
        return e;
    }
    uint32_t k = 0;
    for (uint32_t j = e.first; j < e.first + e.span; ++j) {
        for (uint32_t i = 0; i < old[j]->size; ++i) {
            if (j != c || i != at) {
                e.fresh->items[k++] = old[j]->items[i];
            }
        }
    }
    e.fresh->size = k;
    return e;
}

// `added` appended: to a copy of the last chunk while it has room, else in a chunk of its own.
party_set::chunk_edit party_set::edit_adding(const party_set& from, const party& added,
                                             census& tally) noexcept {
    const uint32_t count = from.stored_chunk_count();
    tally.add(added);
    chunk_edit e;
    e.fresh = allocate_chunk();
    if (e.fresh == nullptr) {
        e.ok = false;
        return e;
    }
    const chunk* last = from.chunks()[count - 1];
    if (last->size < chunk_parties) {
        e.first = count - 1;
        e.span = 1;
        std::copy_n(last->items, last->size, e.fresh->items);
        e.fresh->items[last->size] = added;
        e.fresh->size = last->size + 1;
    } else {
        e.first = count;
        e.span = 0;
        e.fresh->items[0] = added;
        e.fresh->size = 1;
    }
    return e;
}

// A chunked set from a chunked set: the chunks an edit replaced give way to its fresh chunk;
// the others are shared.
party_set* party_set::change_chunked(const party_set& from, const party* added,
                                     uint32_t removed) noexcept {
    const bool removing = removed < from.size();
    if (removing && added != nullptr) {
        party_set* without = change_chunked(from, nullptr, removed);
        party_set* set =
            without != nullptr ? change_chunked(*without, added, without->size()) : nullptr;
        destroy(without);
        return set;
    }
    const uint32_t count = from.stored_chunk_count();
    chunk* const* old = from.chunks();
    census tally{from.chain_takers_, from.edge_parties_};
    const chunk_edit e =
        removing ? edit_removing(from, removed, tally) : edit_adding(from, *added, tally);
    if (!e.ok) {
        return nullptr;
    }
    const uint32_t n = removing ? from.size() - 1 : from.size() + 1;
    party_set* set = allocate_chunked(n, tally, count - e.span + (e.fresh != nullptr ? 1 : 0));
    if (set == nullptr) {
        if (e.fresh != nullptr) {
            release(e.fresh);
        }
        return nullptr;
    }
    chunk** to = set->chunks();
    for (uint32_t j = 0; j < count; ++j) {
        if (j == e.first && e.fresh != nullptr) {
            *to++ = e.fresh;
        }
        if (j < e.first || j >= e.first + e.span) {
            ++old[j]->holders;
            *to++ = old[j];
        }
    }
    if (e.first == count) {
        *to++ = e.fresh;
    }
    return set;
}

const party& party_set::chunked_at(uint32_t i) const noexcept {
    chunk* const* c = chunks();
    while (i >= (*c)->size) {
        i -= (*c)->size;
        ++c;
    }
    return (*c)->items[i];
}

void party_set::cursor::seek_chunk(uint32_t i) noexcept {
    chunk* const* c = set_->chunks();
    chunk_ = 0;
    while (i >= c[chunk_]->size) {
        i -= c[chunk_]->size;
        ++chunk_;
    }
    at_ = c[chunk_]->items + i;
    end_ = c[chunk_]->items + c[chunk_]->size;
}

void party_set::cursor::next_run() noexcept {
    if (!set_->chunked()) {
        at_ = set_->data(); // round to the first
        return;
    }
    chunk_ = chunk_ + 1 < set_->stored_chunk_count() ? chunk_ + 1 : 0;
    const chunk* c = set_->chunks()[chunk_];
    at_ = c->items;
    end_ = c->items + c->size;
}

party_set* party_set::create_embedded(void* mem, std::span<const party> parties) noexcept {
    return build(mem, parties, true);
}

void party_set::destroy(party_set* set) noexcept {
    if (set == nullptr || set->embedded()) {
        return;
    }
    if (set->chunked()) {
        for (uint32_t k = 0; k < set->stored_chunk_count(); ++k) {
            release(set->chunks()[k]);
        }
    }
    --live_;
    set->~party_set();
    ::operator delete(set);
}

namespace {
// A vc that could not be built in its index slot: a block of its own, laid out as in the slot.
constexpr size_t vc_block_size = RTE_CACHE_LINE_SIZE;
} // namespace

vc* vc::create(key_table& table, uint32_t key, uint32_t stats_slot, party_set* parties) {
    if (alloc_faults::fails(alloc_faults::site::vc)) {
        return nullptr;
    }
    void* mem = table.claim_home(key);
    const bool at_home = mem != nullptr;
    if (!at_home) {
        mem = ::operator new(vc_block_size, std::align_val_t(vc_block_size), std::nothrow);
        if (mem == nullptr) {
            return nullptr;
        }
    }
    party_set* set = parties;
    if (parties->size() <= inline_parties) {
        set = party_set::create_embedded(static_cast<vc*>(mem) + 1, // vc::holds_inline
                                         {&(*parties)[0], parties->size()});
        party_set::destroy(parties);
    }
    return new (mem) vc{.key = key, .at_home = at_home, .stats_slot = stats_slot, .parties = set};
}

void vc::destroy(vc* v) noexcept {
    if (v == nullptr) {
        return;
    }
    party_set::destroy(v->parties);
    delete v->meter;
    const bool at_home = v->at_home;
    const uint32_t key = v->key;
    v->~vc();
    if (at_home) {
        key_table::release_home(v, key);
    } else {
        ::operator delete(v, std::align_val_t(vc_block_size));
    }
}

key_table::key_table(uint32_t key_limit)
    : leaf_count_((key_limit + leaf_size - 1) >> leaf_bits)
    , leaves_(new leaf*[leaf_count_]()) {}

// Workers no longer see the table (its connection was unpublished a grace period ago), but
// vcs built in its slots may still wait for their own grace period: their leaves stay until
// the last of them is destroyed.
key_table::~key_table() {
    for (uint32_t i = 0; i < leaf_count_; ++i) {
        leaf* l = leaves_[i];
        if (l != nullptr && l->holds_vcs()) {
            l->orphaned = true;
        } else {
            delete l;
        }
    }
}

key_table::leaf* key_table::leaf_for(uint32_t key) {
    const uint32_t hi = key >> leaf_bits;
    if (hi >= leaf_count_) {
        return nullptr;
    }
    leaf* l = leaves_[hi];
    if (l == nullptr) {
        l = alloc_faults::fails(alloc_faults::site::table_leaf) ? nullptr
                                                                : new (std::nothrow) leaf{};
        if (l == nullptr) {
            return nullptr;
        }
        // The leaf is all null before it is published, so a worker that finds it sees either
        // nothing or a fully written slot.
        rcu_assign_pointer(leaves_[hi], l);
    }
    return l;
}

bool key_table::publish(uint32_t key, vc* v) {
    leaf* l = leaf_for(key);
    if (l == nullptr) {
        return false;
    }
    vc*& current = l->slots[key & (leaf_size - 1)].current;
    count(int(v != nullptr) - int(current != nullptr));
    rcu_assign_pointer(current, v);
    return true;
}

vc* key_table::unpublish(uint32_t key) noexcept {
    const uint32_t hi = key >> leaf_bits;
    if (hi >= leaf_count_ || leaves_[hi] == nullptr) {
        return nullptr;
    }
    vc*& current = leaves_[hi]->slots[key & (leaf_size - 1)].current;
    vc* old = current;
    count(-int(old != nullptr));
    rcu_assign_pointer(current, nullptr);
    return old;
}

void* key_table::claim_home(uint32_t key) {
    leaf* l = leaf_for(key);
    if (l == nullptr) {
        return nullptr;
    }
    const uint32_t i = key & (leaf_size - 1);
    uint64_t& used = l->home_used[i / 64];
    const uint64_t bit = uint64_t(1) << (i % 64);
    if ((used & bit) != 0) {
        return nullptr;
    }
    used |= bit;
    return l->slots[i].home;
}

void key_table::release_home(const vc* v, uint32_t key) noexcept {
    // v is in slots[i].home of its leaf; the slots are the leaf's first member.
    const uint32_t i = key & (leaf_size - 1);
    const auto* s = reinterpret_cast<const slot*>(reinterpret_cast<const unsigned char*>(v) -
                                                  offsetof(slot, home));
    auto* l = reinterpret_cast<leaf*>(const_cast<slot*>(s - i));
    l->home_used[i / 64] &= ~(uint64_t(1) << (i % 64));
    if (l->orphaned && !l->holds_vcs()) {
        delete l;
    }
}

bool key_table::leaf::holds_vcs() const noexcept {
    return std::any_of(std::begin(home_used), std::end(home_used),
                       [](uint64_t w) { return w != 0; });
}

size_t key_table::leaves_in_use() const noexcept {
    size_t n = 0;
    for (uint32_t i = 0; i < leaf_count_; ++i) {
        n += leaves_[i] != nullptr;
    }
    return n;
}

size_t key_table::memory_bytes() const noexcept {
    return leaf_count_ * sizeof(leaf*) + leaves_in_use() * sizeof(leaf);
}

connection_entry::connection_entry(media_kind m, uint16_t port_id, const uint8_t port_mac[6])
    : media(m)
    , port(port_id)
    , keys(m == media_kind::mpls ? mpls_label_max + 1 : vlan_vid_max + 2) {
    std::memcpy(mac, port_mac, 6);
}

} // namespace vcplane
