#pragma once
// The wire format of docs/design.md §3: Ethernet II carrying one MPLS label stack entry (ethertype
// 0x8847) or one 802.1Q tag. Pure functions on byte buffers, so they are testable without EAL
// and usable on the worker path (all inline, no allocation).

#include <cstdint>
#include <cstring>

namespace vcplane::wire {

inline constexpr uint16_t ethertype_mpls = 0x8847;
inline constexpr uint16_t ethertype_vlan = 0x8100;
inline constexpr uint16_t ethertype_ipv4 = 0x0800;
inline constexpr uint16_t ethertype_ipv6 = 0x86dd;
inline constexpr size_t ether_header_len = 14;
inline constexpr size_t mpls_entry_len = 4;
inline constexpr size_t vlan_tag_len = 4;
// The offset of the ethertype field and of what follows it.
inline constexpr size_t ethertype_offset = 12;

inline uint16_t load_be16(const uint8_t* p) {
    return uint16_t(p[0] << 8 | p[1]);
}
inline uint32_t load_be32(const uint8_t* p) {
    return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}
inline void store_be16(uint8_t* p, uint16_t v) {
    p[0] = uint8_t(v >> 8);
    p[1] = uint8_t(v);
}
inline void store_be32(uint8_t* p, uint32_t v) {
    p[0] = uint8_t(v >> 24);
    p[1] = uint8_t(v >> 16);
    p[2] = uint8_t(v >> 8);
    p[3] = uint8_t(v);
}

// The label of an MPLS label stack entry, label(20) | TC(3) | S(1) | TTL(8).
inline constexpr uint32_t mpls_label_of(uint32_t entry) {
    return entry >> 12;
}
// The VID of an 802.1Q TCI, PCP(3) | DEI(1) | VID(12).
inline constexpr uint16_t vlan_vid_of(uint16_t tci) {
    return uint16_t(tci & 0x0fff);
}

// One MPLS label stack entry.
struct mpls_entry {
    uint32_t raw;
    uint32_t label() const { return mpls_label_of(raw); }
    uint8_t tc() const { return uint8_t((raw >> 9) & 7); }
    bool bottom() const { return (raw >> 8) & 1; }
    uint8_t ttl() const { return uint8_t(raw); }
};

inline constexpr uint32_t make_mpls_entry(uint32_t label, uint8_t tc, bool bottom, uint8_t ttl) {
    return label << 12 | uint32_t(tc & 7) << 9 | uint32_t(bottom) << 8 | ttl;
}

// The swap for one egress copy: new label, TC and S kept, TTL one less. The caller has
// checked ttl > 1 (a packet whose TTL would reach 0 is dropped before replication).
inline constexpr uint32_t swap_mpls_entry(uint32_t raw, uint32_t out_label) {
    return out_label << 12 | (raw & 0xf00) | ((raw & 0xff) - 1);
}

// The 802.1Q TCI with the VID replaced, PCP and DEI kept.
inline constexpr uint16_t swap_vlan_tci(uint16_t tci, uint16_t out_vid) {
    return uint16_t((tci & 0xf000) | (out_vid & 0x0fff));
}

inline void write_macs(uint8_t* frame, const uint8_t dst[6], const uint8_t src[6]) {
    std::memcpy(frame, dst, 6);
    std::memcpy(frame + 6, src, 6);
}

// Close data on the MPLS Generic Associated Channel (RFC 5586): the party's label (S=0), the
// GAL (label 13, S=1, TTL 1), a 4-byte ACH with an experimental channel type, then the data.
inline constexpr uint32_t gal_label = 13;
// The channel type is the first of the experimental range IANA reserves, 0x7FF8..0x7FFF
// (RFC 5586 §10): no registered channel is taken, and a peer that does not know it skips it.
inline constexpr uint16_t ach_channel_close_data = 0x7FF8;
inline constexpr size_t gach_overhead = mpls_entry_len * 2 + 4; // below the Ethernet header
inline constexpr uint8_t gach_party_ttl = 255;

// Writes the whole frame into out (which holds at least ether_header_len + gach_overhead +
// len bytes) and returns its length.
inline size_t write_gach_frame(uint8_t* out, const uint8_t dst[6], const uint8_t src[6],
                               uint32_t party_label, const uint8_t* data, size_t len) {
    write_macs(out, dst, src);
    store_be16(out + ethertype_offset, ethertype_mpls);
    uint8_t* p = out + ether_header_len;
    store_be32(p, make_mpls_entry(party_label, 0, false, gach_party_ttl));
    store_be32(p + 4, make_mpls_entry(gal_label, 0, true, 1));
    // ACH: first nibble 0001, version 0, reserved 0, then the channel type.
    store_be16(p + 8, 0x1000);
    store_be16(p + 10, ach_channel_close_data);
    if (len != 0) {
        std::memcpy(p + gach_overhead, data, len);
    }
    return ether_header_len + gach_overhead + len;
}

} // namespace vcplane::wire
