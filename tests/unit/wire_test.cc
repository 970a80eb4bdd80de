// The header arithmetic of docs/design.md §3.

#include <gtest/gtest.h>

#include "dataplane/wire.hh"

namespace vcplane::wire {
namespace {

TEST(wire, mpls_entry_fields) {
    const mpls_entry e{make_mpls_entry(1048575, 7, true, 255)};
    EXPECT_EQ(e.label(), 1048575u);
    EXPECT_EQ(e.tc(), 7);
    EXPECT_TRUE(e.bottom());
    EXPECT_EQ(e.ttl(), 255);
    EXPECT_EQ(make_mpls_entry(16, 0, false, 1), 0x00010001u);
}

TEST(wire, swap_keeps_tc_and_s_and_decrements_ttl) {
    for (uint8_t tc = 0; tc < 8; ++tc) {
        for (bool s : {false, true}) {
            const uint32_t in = make_mpls_entry(1000, tc, s, 64);
            EXPECT_EQ(swap_mpls_entry(in, 2000), make_mpls_entry(2000, tc, s, 63));
        }
    }
    EXPECT_EQ(mpls_entry{swap_mpls_entry(make_mpls_entry(20, 0, true, 2), 30)}.ttl(), 1);
}

TEST(wire, vlan_swap_keeps_pcp_and_dei) {
    EXPECT_EQ(swap_vlan_tci(0xf064, 200), 0xf0c8);
    EXPECT_EQ(swap_vlan_tci(0x0001, 4094), 0x0ffe);
}

TEST(wire, big_endian_loads_and_stores) {
    uint8_t b[4];
    store_be32(b, 0x01020304);
    EXPECT_EQ(b[0], 1);
    EXPECT_EQ(b[3], 4);
    EXPECT_EQ(load_be32(b), 0x01020304u);
    store_be16(b, 0x8847);
    EXPECT_EQ(load_be16(b), 0x8847);
}

// Defect: the channel type was 0xFFF8, outside the experimental range RFC 5586 §10 reserves.
TEST(wire, close_data_rides_the_first_experimental_ach_channel_type) {
    const uint8_t dst[6] = {2, 0, 0, 0, 0, 1}, src[6] = {2, 0, 0, 0, 0, 2};
    const uint8_t data[3] = {'e', 'n', 'd'};
    uint8_t frame[ether_header_len + gach_overhead + sizeof(data)] = {};
    ASSERT_EQ(write_gach_frame(frame, dst, src, 2001, data, sizeof(data)), sizeof(frame));
    // Party label 2001 (S=0, TTL 255), GAL 13 (S=1, TTL 1), ACH 0001 0000 0x00 then 0x7FF8.
    const uint8_t want[] = {0x00, 0x7d, 0x10, 0xff, 0x00, 0x00, 0xd1, 0x01,
                            0x10, 0x00, 0x7f, 0xf8, 'e',  'n',  'd'};
    EXPECT_EQ(std::vector<uint8_t>(frame + ether_header_len, frame + sizeof(frame)),
              std::vector<uint8_t>(want, want + sizeof(want)));
}

} // namespace
} // namespace vcplane::wire
