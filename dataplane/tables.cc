// Building and changing the tables: control thread only (the workers only read them, through
// the inline lookups in tables.hh), so allocating here is allowed.
#include "dataplane/tables.hh"

#include <algorithm>
#include <cstring>
#include <new>

namespace vcplane {

party_set* party_set::build(void* mem, std::span<const party> parties, bool embedded) noexcept {
    const auto chain_takers = static_cast<uint32_t>(std::count_if(
        parties.begin(), parties.end(), [](const party& p) { return p.takes_chains; }));
    auto* set = new (mem) party_set(static_cast<uint32_t>(parties.size()), chain_takers, embedded);
    std::uninitialized_copy(parties.begin(), parties.end(), set->data());
    return set;
}

party_set* party_set::create(std::span<const party> parties) {
    void* mem = ::operator new(footprint(parties.size()), std::nothrow);
    if (mem == nullptr) {
        return nullptr;
    }
    ++live_;
    return build(mem, parties, false);
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
constexpr size_t vc_block_parties =
    (vc::block_size - sizeof(vc) - sizeof(party_set)) / sizeof(party);
}

vc* vc::create(uint32_t key, uint32_t stats_slot, party_set* parties) {
    void* mem = ::operator new(block_size, std::align_val_t(block_size), std::nothrow);
    if (mem == nullptr) {
        return nullptr;
    }
    party_set* set = parties;
    if (parties->size() <= vc_block_parties) {
        set = party_set::create_embedded(static_cast<vc*>(mem) + 1, // vc::holds_inline
                                         {parties->begin(), parties->end()});
        party_set::destroy(parties);
    }
    return new (mem) vc{key, stats_slot, set};
}

void vc::destroy(vc* v) noexcept {
    if (v != nullptr) {
        party_set::destroy(v->parties);
        v->~vc();
        ::operator delete(v, std::align_val_t(block_size));
    }
}

key_table::key_table(uint32_t key_limit)
    : leaf_count_((key_limit + leaf_size - 1) >> leaf_bits)
    , leaves_(new leaf*[leaf_count_]()) {}

key_table::~key_table() {
    for (uint32_t i = 0; i < leaf_count_; ++i) {
        delete leaves_[i];
    }
}

bool key_table::publish(uint32_t key, vc* v) {
    const uint32_t hi = key >> leaf_bits;
    if (hi >= leaf_count_) {
        return false;
    }
    leaf* l = leaves_[hi];
    if (l == nullptr) {
        l = new (std::nothrow) leaf{};
        if (l == nullptr) {
            return false;
        }
        // The leaf is all null before it is published, so a worker that finds it sees either
        // nothing or a fully written slot.
        rcu_assign_pointer(leaves_[hi], l);
    }
    vc*& slot = l->slots[key & (leaf_size - 1)];
    count(int(v != nullptr) - int(slot != nullptr));
    rcu_assign_pointer(slot, v);
    return true;
}

vc* key_table::unpublish(uint32_t key) noexcept {
    const uint32_t hi = key >> leaf_bits;
    if (hi >= leaf_count_ || leaves_[hi] == nullptr) {
        return nullptr;
    }
    vc*& slot = leaves_[hi]->slots[key & (leaf_size - 1)];
    vc* old = slot;
    count(-int(old != nullptr));
    rcu_assign_pointer(slot, nullptr);
    return old;
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
