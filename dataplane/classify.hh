#pragma once
// Classification: the key (MPLS label or VID; on a port connection always port_key) a
// received frame names on its ingress connection, and the header checks that drop it before
// any table is read. Pure functions of
// the frame's first bytes (docs/design.md §3), inlined into the worker's pass.
//
// MPLS and 802.1Q both put a 4-byte word right after the ethertype: the top label stack entry,
// or the tag's TCI followed by the inner ethertype. A frame is classified on that word alone.

#include <cstdint>

#include <rte_mbuf.h>

#include "dataplane/counters.hh"
#include "dataplane/tables.hh"
#include "dataplane/wire.hh"
#include "vocab/media.hh"

namespace vcplane {

inline constexpr uint32_t no_key = UINT32_MAX;
inline constexpr uint32_t classified_len = wire::ether_header_len + 4;

// The key a frame names, or no_key; for look-ahead only: it checks the length and ethertype
// but not the key's range (read_key checks the frame in full, and a vc only ever exists for
// a key in range, so a key out of range is a miss either way).
[[gnu::always_inline]] inline uint32_t peek_key(const connection_entry& conn,
                                                const rte_mbuf* m) noexcept {
    if (rte_pktmbuf_data_len(m) < classified_len) [[unlikely]] {
        return no_key;
    }
    const uint8_t* f = rte_pktmbuf_mtod(m, const uint8_t*);
    const uint16_t ethertype = wire::load_be16(f + wire::ethertype_offset);
    const uint32_t word = wire::load_be32(f + wire::ether_header_len);
    if (conn.media == media_kind::mpls) {
        return ethertype == wire::ethertype_mpls ? wire::mpls_label_of(word) : no_key;
    }
    if (conn.media == media_kind::port) [[unlikely]] {
        return port_key;
    }
    return ethertype == wire::ethertype_vlan ? wire::vlan_vid_of(uint16_t(word >> 16)) : no_key;
}

// The word after the ethertype as received (an unchecked read: the caller has classified m).
[[gnu::always_inline]] inline uint32_t header_word(const rte_mbuf* m) noexcept {
    return wire::load_be32(rte_pktmbuf_mtod(m, const uint8_t*) + wire::ether_header_len);
}

// m's key on conn into *key, and its header word into *word; false, with *why, when m cannot
// be forwarded on any VC of conn (too short, wrong ethertype, reserved key).
[[gnu::always_inline]] inline bool read_key(const connection_entry& conn, const rte_mbuf* m,
                                            uint32_t* key, uint32_t* word,
                                            drop_reason* why) noexcept {
    if (rte_pktmbuf_data_len(m) < classified_len) [[unlikely]] {
        *why = drop_reason::truncated;
        return false;
    }
    const uint8_t* f = rte_pktmbuf_mtod(m, const uint8_t*);
    const uint16_t ethertype = wire::load_be16(f + wire::ethertype_offset);
    *word = wire::load_be32(f + wire::ether_header_len);
    if (conn.media == media_kind::mpls) {
        if (ethertype != wire::ethertype_mpls) [[unlikely]] {
            *why = drop_reason::wrong_ethertype;
            return false;
        }
        *key = wire::mpls_label_of(*word);
        if (*key < mpls_label_min) [[unlikely]] {
            *why = drop_reason::reserved_key;
            return false;
        }
        return true;
    }
    if (conn.media == media_kind::port) [[unlikely]] {
        *key = port_key; // every frame is the one VC's, whatever it carries
        return true;
    }
    if (ethertype != wire::ethertype_vlan) [[unlikely]] {
        *why = drop_reason::wrong_ethertype;
        return false;
    }
    *key = wire::vlan_vid_of(uint16_t(*word >> 16));
    if (*key < vlan_vid_min || *key > vlan_vid_max) [[unlikely]] {
        *why = drop_reason::reserved_key;
        return false;
    }
    return true;
}

// Whether an MPLS frame's TTL would reach 0 (word: its top entry as received).
inline bool mpls_ttl_expires(uint32_t word) noexcept {
    return (word & 0xff) <= 1;
}

} // namespace vcplane
