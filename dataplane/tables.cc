// Building and changing the tables: control thread only (the workers only read them, through
// the inline lookups in tables.hh), so allocating here is allowed.
#include "dataplane/tables.hh"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <iterator>
#include <new>

namespace vcplane {

party_set* party_set::build(void* mem, std::span<const party> parties, bool embedded) noexcept {
    const auto chain_takers = static_cast<uint32_t>(std::count_if(
        parties.begin(), parties.end(), [](const party& p) { return p.takes_chains; }));
    auto* set = new (mem) party_set(static_cast<uint32_t>(parties.size()), chain_takers, embedded);
    std::uninitialized_copy(parties.begin(), parties.end(), set->data());
    return set;
}

void* party_set::allocate(size_t n) noexcept {
    if (failing_creates_ != 0) {
        --failing_creates_;
        return nullptr;
    }
    void* mem = ::operator new(footprint(n), std::nothrow);
    if (mem != nullptr) {
        ++live_;
    }
    return mem;
}

party_set* party_set::create(std::span<const party> parties) {
    void* mem = allocate(parties.size());
    return mem != nullptr ? build(mem, parties, false) : nullptr;
}

party_set* party_set::create_changed(const party_set& from, const party* added, uint32_t removed) {
    const bool removing = removed < from.size();
    const size_t n = from.size() + (added != nullptr ? 1 : 0) - (removing ? 1 : 0);
    void* mem = allocate(n);
    if (mem == nullptr) {
        return nullptr;
    }
    uint32_t chain_takers = from.chain_takers_;
    chain_takers -= removing && from[removed].takes_chains ? 1 : 0;
    chain_takers += added != nullptr && added->takes_chains ? 1 : 0;
    auto* set = new (mem) party_set(uint32_t(n), chain_takers, false);
    party* to = set->data();
    const uint32_t head = removing ? removed : from.size();
    std::uninitialized_copy(from.begin(), from.begin() + head, to);
    if (removing) {
        std::uninitialized_copy(from.begin() + removed + 1, from.end(), to + head);
    }
    if (added != nullptr) {
        to[n - 1] = *added;
    }
    return set;
}

party_set* party_set::create_embedded(void* mem, std::span<const party> parties) noexcept {
    return build(mem, parties, true);
}

void party_set::destroy(party_set* set) noexcept {
    if (set != nullptr && !set->embedded()) {
        --live_;
        set->~party_set();
        ::operator delete(set);
    }
}

namespace {
// A vc that could not be built in its index slot: a block of its own, laid out as in the slot.
constexpr size_t vc_block_size = RTE_CACHE_LINE_SIZE;
} // namespace

vc* vc::create(key_table& table, uint32_t key, uint32_t stats_slot, party_set* parties) {
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
                                         {parties->begin(), parties->end()});
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
        l = new (std::nothrow) leaf{};
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
