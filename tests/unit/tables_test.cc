// The forwarding tables without EAL: the two-level key index and the party arrays.

#include <algorithm>
#include <gtest/gtest.h>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "base/alloc_faults.hh"
#include "dataplane/tables.hh"

namespace vcplane {
namespace {

// A vc as the index sees it (the tables do not look inside).
vc bare_vc(uint32_t key, uint32_t stats_slot) {
    return vc{.key = key, .stats_slot = stats_slot, .parties = nullptr};
}

TEST(key_table, lookup_finds_what_was_published_and_nothing_else) {
    key_table t(mpls_label_max + 1);
    vc a = bare_vc(16, 0), b = bare_vc(1048575, 1), c = bare_vc(1024, 2);
    EXPECT_TRUE(t.publish(16, &a));
    EXPECT_TRUE(t.publish(1048575, &b));
    EXPECT_TRUE(t.publish(1024, &c));
    EXPECT_EQ(t.lookup(16), &a);
    EXPECT_EQ(t.lookup(1048575), &b);
    EXPECT_EQ(t.lookup(1024), &c);
    EXPECT_EQ(t.lookup(17), nullptr);
    EXPECT_EQ(t.lookup(1023), nullptr);   // same leaf as 16's neighbours, empty slot
    EXPECT_EQ(t.lookup(500000), nullptr); // a leaf never allocated
    EXPECT_EQ(t.leaves_in_use(), 3u);
}

TEST(key_table, keys_beyond_the_limit_miss_and_cannot_be_published) {
    key_table t(vlan_vid_max + 2);
    vc a = bare_vc(4095, 0);
    EXPECT_EQ(t.lookup(1u << 20), nullptr);
    EXPECT_EQ(t.lookup(UINT32_MAX), nullptr);
    EXPECT_FALSE(t.publish(1u << 20, &a));
    EXPECT_TRUE(t.publish(4095, &a)); // within the table; the worker refuses 4095 itself
    EXPECT_EQ(t.key_limit(), 4096u);
}

TEST(key_table, unpublish_returns_the_old_vc_and_empties_the_slot) {
    key_table t(mpls_label_max + 1);
    vc a = bare_vc(100, 0), b = bare_vc(100, 1);
    EXPECT_EQ(t.unpublish(100), nullptr);
    t.publish(100, &a);
    t.publish(100, &b); // replace: the caller retires a
    EXPECT_EQ(t.lookup(100), &b);
    EXPECT_EQ(t.unpublish(100), &b);
    EXPECT_EQ(t.lookup(100), nullptr);
    EXPECT_EQ(t.leaves_in_use(), 1u); // leaves stay: a worker may be inside one
}

TEST(key_table, the_whole_label_space_costs_a_cache_line_per_label) {
    key_table t(mpls_label_max + 1);
    std::vector<vc> vcs(mpls_label_max + 1);
    for (uint32_t k = mpls_label_min; k <= mpls_label_max; ++k) {
        vcs[k] = bare_vc(k, k);
        ASSERT_TRUE(t.publish(k, &vcs[k]));
    }
    for (uint32_t k = mpls_label_min; k <= mpls_label_max; k += 4099) {
        EXPECT_EQ(t.lookup(k), &vcs[k]);
    }
    EXPECT_EQ(t.leaves_in_use(), 1024u);
    EXPECT_EQ(t.memory_bytes(), 1024 * sizeof(void*) + 1024 * key_table::leaf_bytes());
    // A slot per key (a line: the vc pointer and room for the vc), and a little bookkeeping.
    EXPECT_LE(key_table::leaf_bytes(), 1024 * 64 + 256);
}

TEST(party_set, holds_a_copy_of_the_parties_in_order) {
    std::vector<party> ps(5);
    for (uint32_t i = 0; i < ps.size(); ++i) {
        ps[i].out_key = 1000 + i;
        ps[i].tx_port = uint16_t(i);
        ps[i].dst_mac[5] = uint8_t(i);
    }
    party_set* s = party_set::create(ps);
    ASSERT_NE(s, nullptr);
    ps[0].out_key = 0; // the set is a copy
    ASSERT_EQ(s->size(), 5u);
    uint32_t i = 0;
    for (const party& p : *s) {
        EXPECT_EQ(p.out_key, 1000 + i);
        EXPECT_EQ(p.tx_port, i);
        EXPECT_EQ(p.dst_mac[5], i);
        ++i;
    }
    party_set::destroy(s);
    party_set::destroy(nullptr);
}

// Parties told apart by their out-key.
std::vector<party> numbered_parties(uint32_t n, uint32_t from = 0) {
    std::vector<party> ps(n);
    for (uint32_t i = 0; i < n; ++i) {
        ps[i].out_key = from + i;
        ps[i].takes_chains = (from + i) % 3 != 0;
    }
    return ps;
}

std::vector<uint32_t> keys_of(const party_set& s) {
    std::vector<uint32_t> keys;
    for (const party& p : s) {
        keys.push_back(p.out_key);
    }
    return keys;
}

std::vector<uint32_t> keys_of(const std::vector<party>& ps) {
    std::vector<uint32_t> keys;
    for (const party& p : ps) {
        keys.push_back(p.out_key);
    }
    return keys;
}

bool all_take_chains(const std::vector<party>& ps) {
    return std::all_of(ps.begin(), ps.end(), [](const party& p) { return p.takes_chains; });
}

TEST(party_set, a_large_set_is_held_in_chunks_in_order) {
    const size_t sets = party_set::live(), chunks = party_set::chunks_live();
    const auto ps = numbered_parties(1000);
    party_set* s = party_set::create(ps);
    ASSERT_NE(s, nullptr);
    EXPECT_TRUE(s->chunked());
    EXPECT_EQ(s->chunk_count(), 16u); // 15 of 64 and one of 40
    EXPECT_EQ(party_set::chunks_live(), chunks + 16);
    ASSERT_EQ(s->size(), 1000u);
    EXPECT_EQ(keys_of(*s), keys_of(ps));
    for (uint32_t i : {0u, 63u, 64u, 511u, 999u}) {
        EXPECT_EQ((*s)[i].out_key, i);
    }
    // A cursor from any party walks every one once, wrapping round.
    for (uint32_t first : {0u, 1u, 63u, 64u, 960u, 999u}) {
        party_set::cursor c(*s, first);
        for (uint32_t i = 0; i < 2000; ++i, c.advance()) {
            ASSERT_EQ((*c).out_key, (first + i) % 1000) << first << " + " << i;
        }
    }
    EXPECT_FALSE(s->all_take_chains());
    party_set::destroy(s);
    EXPECT_EQ(party_set::live(), sets);
    EXPECT_EQ(party_set::chunks_live(), chunks);
    // At 64 parties a set is flat; at 65, chunked.
    party_set* flat = party_set::create(numbered_parties(party_set::chunk_parties));
    party_set* two = party_set::create(numbered_parties(party_set::chunk_parties + 1));
    EXPECT_FALSE(flat->chunked());
    EXPECT_EQ(two->chunk_count(), 2u);
    party_set::destroy(flat);
    party_set::destroy(two);
    EXPECT_EQ(party_set::chunks_live(), chunks);
}

TEST(party_set, changes_to_a_large_set_share_its_chunks_and_keep_its_order) {
    // Adds and drops at random against a plain vector: after each change the new set holds
    // exactly the vector's parties in its order, the set it was made from is untouched (a
    // worker may still read it), at most one chunk is new, and no chunk outlives its sets.
    const size_t sets = party_set::live(), chunks = party_set::chunks_live();
    std::vector<party> want = numbered_parties(200);
    party_set* s = party_set::create(want);
    ASSERT_NE(s, nullptr);
    uint32_t next_key = 10000;
    uint64_t seed = 42;
    const auto random = [&seed](uint32_t bound) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        return uint32_t((seed >> 33) % bound);
    };
    for (int step = 0; step < 3000; ++step) {
        const std::vector<uint32_t> before = keys_of(*s);
        const size_t chunks_before = party_set::chunks_live();
        // Grow towards 1024 for the first half, then shrink through the flat sizes and back.
        const bool add = want.size() < 2 || (step < 1500 ? random(3) != 0 : random(5) < 2);
        party_set* next;
        if (add) {
            party p{};
            p.out_key = next_key++;
            p.takes_chains = p.out_key % 3 != 0;
            next = party_set::create_changed(*s, &p, s->size());
            want.push_back(p);
        } else {
            const uint32_t at = random(uint32_t(want.size()));
            next = party_set::create_changed(*s, nullptr, at);
            want.erase(want.begin() + at);
        }
        ASSERT_NE(next, nullptr) << step;
        EXPECT_EQ(keys_of(*s), before) << step;
        ASSERT_EQ(keys_of(*next), keys_of(want)) << step;
        ASSERT_EQ(next->size(), want.size());
        EXPECT_EQ(next->all_take_chains(), all_take_chains(want)) << step;
        EXPECT_EQ(next->chunked(), want.size() > party_set::chunk_parties) << step;
        if (s->chunked() && next->chunked()) {
            EXPECT_LE(party_set::chunks_live(), chunks_before + 1) << step;
            EXPECT_LE(next->chunk_count(), 2 * want.size() / party_set::chunk_parties + 1) << step;
        }
        party_set::destroy(s);
        s = next;
    }
    party_set::destroy(s);
    EXPECT_EQ(party_set::live(), sets);
    EXPECT_EQ(party_set::chunks_live(), chunks);
}

TEST(party_set, a_change_that_finds_no_memory_leaves_nothing_made) {
    const size_t sets = party_set::live(), chunks = party_set::chunks_live();
    const auto ps = numbered_parties(300);
    // Whole: the third chunk fails after the set and two chunks were allocated.
    alloc_faults::arm(alloc_faults::site::party_array, 1, 3);
    EXPECT_EQ(party_set::create(ps), nullptr);
    EXPECT_EQ(party_set::live(), sets);
    EXPECT_EQ(party_set::chunks_live(), chunks);
    party_set* s = party_set::create(ps);
    ASSERT_NE(s, nullptr);
    const size_t made = party_set::chunks_live();
    party p{};
    p.out_key = 7777;
    // A change: its fresh chunk, then its table.
    for (unsigned after : {0u, 1u}) {
        alloc_faults::arm(alloc_faults::site::party_array, 1, after);
        EXPECT_EQ(party_set::create_changed(*s, &p, s->size()), nullptr) << after;
        alloc_faults::arm(alloc_faults::site::party_array, 1, after);
        EXPECT_EQ(party_set::create_changed(*s, nullptr, 100), nullptr) << after;
        EXPECT_EQ(party_set::live(), sets + 1);
        EXPECT_EQ(party_set::chunks_live(), made);
    }
    EXPECT_EQ(keys_of(*s), keys_of(ps));
    party_set* next = party_set::create_changed(*s, &p, s->size()); // and the next one works
    ASSERT_NE(next, nullptr);
    EXPECT_EQ(next->size(), 301u);
    party_set::destroy(s);
    party_set::destroy(next);
    EXPECT_EQ(party_set::live(), sets);
    EXPECT_EQ(party_set::chunks_live(), chunks);
}

// The offset of v from the start of key's index slot: 8 when v was built in the slot (the
// pointer to it comes first), anything else when it was not.
ptrdiff_t offset_in_slot(const key_table& t, uint32_t key, const vc* v) {
    return reinterpret_cast<const char*>(v) - reinterpret_cast<const char*>(t.slot_of(key));
}

TEST(vc, a_one_party_call_lives_in_its_index_slot_with_its_party_array) {
    const size_t sets_before = party_set::live();
    key_table t(mpls_label_max + 1);
    std::vector<party> one(1);
    one[0].out_key = 4242;
    one[0].takes_chains = true;
    vc* v = vc::create(t, 100, 7, party_set::create(one));
    ASSERT_NE(v, nullptr);
    // The separate array was taken over and freed; the vc's line holds a copy.
    EXPECT_EQ(party_set::live(), sets_before);
    EXPECT_TRUE(v->at_home);
    EXPECT_EQ(offset_in_slot(t, 100, v), ptrdiff_t(sizeof(vc*)));
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.slot_of(100)) % RTE_CACHE_LINE_SIZE, 0u);
    ASSERT_TRUE(v->parties->embedded());
    EXPECT_TRUE(v->holds_inline(v->parties));
    const char* end_of_set = reinterpret_cast<const char*>(v->parties) + party_set::footprint(1);
    EXPECT_LE(end_of_set - reinterpret_cast<const char*>(t.slot_of(100)), RTE_CACHE_LINE_SIZE);
    EXPECT_EQ(v->key, 100u);
    EXPECT_EQ(v->stats_slot, 7u);
    ASSERT_EQ(v->parties->size(), 1u);
    EXPECT_EQ((*v->parties)[0].out_key, 4242u);
    EXPECT_TRUE(v->parties->all_take_chains());
    EXPECT_EQ(t.lookup(100), nullptr); // built, not published
    ASSERT_TRUE(t.publish(100, v));
    EXPECT_EQ(t.lookup(100), v);

    // A party added: a separate array replaces the embedded one, which destroy() leaves to
    // the vc (ASan reports a free of memory inside the leaf otherwise).
    std::vector<party> two(2);
    party_set* embedded = v->parties;
    v->parties = party_set::create(two);
    EXPECT_EQ(party_set::live(), sets_before + 1);
    party_set::destroy(embedded);
    EXPECT_EQ((*embedded)[0].out_key, 4242u); // still there: it is the vc's
    EXPECT_EQ(t.unpublish(100), v);
    vc::destroy(v); // frees the separate array too
    EXPECT_EQ(party_set::live(), sets_before);
}

TEST(vc, a_replacement_lives_beside_the_slot_until_the_old_vc_is_gone) {
    key_table t(mpls_label_max + 1);
    std::vector<party> one(1);
    vc* first = vc::create(t, 2000, 1, party_set::create(one));
    ASSERT_NE(first, nullptr);
    ASSERT_TRUE(first->at_home);
    t.publish(2000, first);
    // A new traffic contract: the new vc is built while the old one is still in the slot
    // (and, once replaced, still read by workers until a grace period has passed).
    one[0].out_key = 7;
    vc* second = vc::create(t, 2000, 1, party_set::create(one));
    ASSERT_NE(second, nullptr);
    EXPECT_FALSE(second->at_home);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(second) % RTE_CACHE_LINE_SIZE, 0u);
    EXPECT_TRUE(second->holds_inline(second->parties)); // its own line holds its party too
    t.publish(2000, second);
    EXPECT_EQ(t.lookup(2000), second);
    EXPECT_EQ((*first->parties)[0].out_key, 0u); // untouched while it may still be read
    vc::destroy(first);                          // its grace period has passed
    // The slot's room is free again: the next replacement goes back in.
    one[0].out_key = 8;
    vc* third = vc::create(t, 2000, 1, party_set::create(one));
    ASSERT_NE(third, nullptr);
    EXPECT_TRUE(third->at_home);
    EXPECT_EQ(offset_in_slot(t, 2000, third), ptrdiff_t(sizeof(vc*)));
    t.publish(2000, third);
    EXPECT_EQ((*t.lookup(2000)->parties)[0].out_key, 8u);
    vc::destroy(second);
    EXPECT_EQ(t.unpublish(2000), third);
    vc::destroy(third);
}

TEST(vc, a_key_beyond_the_table_gets_a_block_of_its_own) {
    key_table t(vlan_vid_max + 2);
    std::vector<party> one(1);
    vc* v = vc::create(t, 1u << 20, 0, party_set::create(one));
    ASSERT_NE(v, nullptr);
    EXPECT_FALSE(v->at_home);
    EXPECT_FALSE(t.publish(v->key, v));
    vc::destroy(v);
}

TEST(vc, a_table_destroyed_first_leaves_its_leaf_to_the_last_vc_in_it) {
    std::vector<party> one(1);
    auto t = std::make_unique<key_table>(mpls_label_max + 1);
    vc* a = vc::create(*t, 5000, 0, party_set::create(one));
    vc* b = vc::create(*t, 5001, 0, party_set::create(one));
    ASSERT_TRUE(a != nullptr && b != nullptr && a->at_home && b->at_home);
    t.reset(); // the connection went first; its vcs wait for their grace period
    EXPECT_EQ(a->key, 5000u);
    vc::destroy(a);
    EXPECT_EQ(b->key, 5001u); // the leaf is still there
    vc::destroy(b);           // and freed with it (ASan: no leak, no use after free)
}

TEST(vc, a_larger_party_array_stays_separate) {
    const size_t sets_before = party_set::live();
    key_table t(mpls_label_max + 1);
    std::vector<party> three(3);
    party_set* s = party_set::create(three);
    vc* v = vc::create(t, 200, 0, s);
    ASSERT_NE(v, nullptr);
    EXPECT_TRUE(v->at_home); // the vc still lives in its slot
    EXPECT_EQ(v->parties, s);
    EXPECT_FALSE(s->embedded());
    EXPECT_FALSE(v->holds_inline(s));
    vc::destroy(v);
    EXPECT_EQ(party_set::live(), sets_before);
    vc::destroy(nullptr);
}

TEST(drop_reason, every_reason_has_its_own_name) {
    std::set<std::string> names;
    for (size_t r = 0; r < drop_reason_count; ++r) {
        const char* n = drop_reason_name(drop_reason(r));
        ASSERT_NE(n, nullptr) << r;
        EXPECT_TRUE(names.insert(n).second) << n;
    }
    EXPECT_EQ(names.count("policed"), 1u);
}

} // namespace
} // namespace vcplane
