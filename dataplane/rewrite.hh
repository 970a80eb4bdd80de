#pragma once
// The headers of one egress copy: party p's MACs and its label or tag, written over the
// frame's own (docs/design.md §3). Worker path; everything inline.

#include <cstdint>

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

// frame becomes p's copy: its next hop's and its port's MACs, then p's label or tag.
template <typename Rewrite>
[[gnu::always_inline]] inline void address_copy(uint8_t* frame, const party& p,
                                                Rewrite rewrite) noexcept {
    write_party_macs(frame, p);
    rewrite(frame, p);
}

} // namespace vcplane
