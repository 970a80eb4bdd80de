// The forwarding tables without EAL: the two-level key index and the party arrays.

#include <gtest/gtest.h>
#include <set>
#include <string>
#include <vector>

#include "dataplane/tables.hh"

namespace vcplane {
namespace {

TEST(key_table, lookup_finds_what_was_published_and_nothing_else) {
    key_table t(mpls_label_max + 1);
    vc a{16, 0, nullptr}, b{1048575, 1, nullptr}, c{1024, 2, nullptr};
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
    vc a{4095, 0, nullptr};
    EXPECT_EQ(t.lookup(1u << 20), nullptr);
    EXPECT_EQ(t.lookup(UINT32_MAX), nullptr);
    EXPECT_FALSE(t.publish(1u << 20, &a));
    EXPECT_TRUE(t.publish(4095, &a)); // within the table; the worker refuses 4095 itself
    EXPECT_EQ(t.key_limit(), 4096u);
}

TEST(key_table, unpublish_returns_the_old_vc_and_empties_the_slot) {
    key_table t(mpls_label_max + 1);
    vc a{100, 0, nullptr}, b{100, 1, nullptr};
    EXPECT_EQ(t.unpublish(100), nullptr);
    t.publish(100, &a);
    t.publish(100, &b); // replace: the caller retires a
    EXPECT_EQ(t.lookup(100), &b);
    EXPECT_EQ(t.unpublish(100), &b);
    EXPECT_EQ(t.lookup(100), nullptr);
    EXPECT_EQ(t.leaves_in_use(), 1u); // leaves stay: a worker may be inside one
}

TEST(key_table, the_whole_label_space_costs_a_pointer_per_label) {
    key_table t(mpls_label_max + 1);
    std::vector<vc> vcs(mpls_label_max + 1);
    for (uint32_t k = mpls_label_min; k <= mpls_label_max; ++k) {
        vcs[k] = vc{k, k, nullptr};
        ASSERT_TRUE(t.publish(k, &vcs[k]));
    }
    for (uint32_t k = mpls_label_min; k <= mpls_label_max; k += 4099) {
        EXPECT_EQ(t.lookup(k), &vcs[k]);
    }
    EXPECT_EQ(t.leaves_in_use(), 1024u);
    EXPECT_EQ(t.memory_bytes(), 1024 * sizeof(void*) + 1024 * 1024 * sizeof(void*));
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

TEST(vc, a_one_party_call_shares_one_cache_line_with_its_party_array) {
    const size_t sets_before = party_set::live();
    std::vector<party> one(1);
    one[0].out_key = 4242;
    one[0].takes_chains = true;
    vc* v = vc::create(100, 7, party_set::create(one));
    ASSERT_NE(v, nullptr);
    // The separate array was taken over and freed; the vc's block holds a copy.
    EXPECT_EQ(party_set::live(), sets_before);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(v) % RTE_CACHE_LINE_SIZE, 0u);
    ASSERT_TRUE(v->parties->embedded());
    EXPECT_EQ(reinterpret_cast<const char*>(v->parties) - reinterpret_cast<const char*>(v),
              ptrdiff_t(sizeof(vc)));
    EXPECT_EQ(v->key, 100u);
    EXPECT_EQ(v->stats_slot, 7u);
    ASSERT_EQ(v->parties->size(), 1u);
    EXPECT_EQ((*v->parties)[0].out_key, 4242u);
    EXPECT_TRUE(v->parties->all_take_chains());

    // A party added: a separate array replaces the embedded one, which destroy() leaves to
    // the vc (ASan reports a free of memory inside the block otherwise).
    std::vector<party> two(2);
    party_set* embedded = v->parties;
    v->parties = party_set::create(two);
    EXPECT_EQ(party_set::live(), sets_before + 1);
    party_set::destroy(embedded);
    EXPECT_EQ((*embedded)[0].out_key, 4242u); // still there: it is the vc's
    vc::destroy(v);                           // frees the separate array too
    EXPECT_EQ(party_set::live(), sets_before);
}

TEST(vc, a_larger_party_array_stays_separate) {
    const size_t sets_before = party_set::live();
    std::vector<party> three(3);
    party_set* s = party_set::create(three);
    vc* v = vc::create(200, 0, s);
    ASSERT_NE(v, nullptr);
    EXPECT_EQ(v->parties, s);
    EXPECT_FALSE(s->embedded());
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
