#pragma once
// The headers of one egress copy: party p's MACs and its label or tag, written over the
// frame's own (docs/design.md §3). Worker path; everything inline.

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "dataplane/tables.hh"
#include "dataplane/wire.hh"

namespace vcplane {

// MPLS swap: p's label, TC and S kept, TTL one less (the frame's TTL was checked).
struct mpls_rewrite {
    uint32_t entry; // the frame's top label stack entry as received
    void operator()(uint8_t* frame, const party& p) const noexcept {
        wire::store_be32(frame + wire::ether_header_len, wire::swap_mpls_entry(entry, p.out_key));
    }
};

// VLAN retag: p's VID, PCP and DEI kept.
struct vlan_rewrite {
    uint16_t tci; // the frame's TCI as received
    void operator()(uint8_t* frame, const party& p) const noexcept {
        wire::store_be16(frame + wire::ether_header_len,
                         wire::swap_vlan_tci(tci, uint16_t(p.out_key)));
    }
};

// A party holds its two MACs in the frame's order, so one copy of 12 bytes of the party's
// representation writes both.
static_assert(offsetof(party, src_mac) == offsetof(party, dst_mac) + 6);
inline constexpr size_t party_macs_len = 12;

// frame becomes p's copy: its next hop's and its port's MACs, then p's label or tag.
template <typename Rewrite>
[[gnu::always_inline]] inline void address_copy(uint8_t* frame, const party& p,
                                                Rewrite rewrite) noexcept {
    std::memcpy(frame, reinterpret_cast<const uint8_t*>(&p) + offsetof(party, dst_mac),
                party_macs_len);
    rewrite(frame, p);
}

} // namespace vcplane
