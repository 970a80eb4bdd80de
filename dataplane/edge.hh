#pragma once
// The edge actions (config/party_action.hh) on the wire: the header one party's copy of a
// frame gets in place of the frame's first bytes (docs/design.md §3.3). A pure function of the
// frame's first bytes and the party, testable without EAL and inlined into the edge
// replicator (dataplane/edge_replicate.cc); no allocation.
//
// A copy is `header` followed by the frame from byte `consumed` on. The rules it applies (TTL
// under uniform and pipe, TC and PCP, the ethertype after a pop, the control word) are stated
// in docs/design.md §3.3; the tests in tests/unit/edge_test.cc hold it to them byte by byte.

#include <cstdint>
#include <cstring>

#include "config/media.hh"
#include "config/party_action.hh"
#include "dataplane/counters.hh"
#include "dataplane/tables.hh"
#include "dataplane/wire.hh"

namespace vcplane::edge {

using wire::ethertype_ipv4;
using wire::ethertype_ipv6;
inline constexpr size_t control_word_len = 4;
inline constexpr uint8_t pipe_ttl = 255;
// A copy's header is at most this long, and the frame's first bytes it reads at most as many
// (pop_tag with the IPv4 header's TTL and checksum; decap_tag with a control word).
inline constexpr uint32_t max_header = 64;

struct cut {
    uint32_t header_len = 0; // bytes of the new header
    uint32_t consumed = 0;   // bytes of the frame it replaces
};

namespace detail {

inline uint8_t* put_macs(uint8_t* h, const party& p) noexcept {
    write_party_macs(h, p);
    return h + 12;
}
inline uint8_t* put16(uint8_t* h, uint16_t v) noexcept {
    wire::store_be16(h, v);
    return h + 2;
}
inline uint8_t* put32(uint8_t* h, uint32_t v) noexcept {
    wire::store_be32(h, v);
    return h + 4;
}
inline bool is_ip(uint16_t ethertype) noexcept {
    return ethertype == ethertype_ipv4 || ethertype == ethertype_ipv6;
}
// The IP precedence of the packet at ip (ethertype known to be IPv4 or IPv6).
inline uint8_t ip_precedence(const uint8_t* ip, uint16_t ethertype) noexcept {
    return ethertype == ethertype_ipv4 ? uint8_t(ip[1] >> 5) : uint8_t((ip[0] & 0x0f) >> 1);
}
// The IPv4 TTL or IPv6 hop limit's offset in its header.
inline uint32_t ttl_offset(uint16_t ethertype) noexcept {
    return ethertype == ethertype_ipv4 ? 8 : 7;
}

// An IPv4 header's checksum after its TTL changed (RFC 1624 eqn. 3); ip: the header.
inline void set_ipv4_ttl(uint8_t* ip, uint8_t ttl) noexcept {
    const uint16_t old_word = wire::load_be16(ip + 8);
    ip[8] = ttl;
    const uint16_t new_word = wire::load_be16(ip + 8);
    uint32_t sum = uint16_t(~wire::load_be16(ip + 10)) + uint16_t(~old_word) + new_word;
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    wire::store_be16(ip + 10, uint16_t(~sum));
}

} // namespace detail

// Party p's header for the frame f (avail contiguous bytes of len in all) that entered on a
// connection of media `in`; false, with *why, when the copy cannot be made. `out` holds
// max_header bytes.
inline bool build_header(const uint8_t* f, uint32_t avail, uint32_t len, media_kind in,
                         const party& p, uint8_t* out, cut* c, drop_reason* why) noexcept {
    using namespace detail;
    using enum party_action;
    // The ingress header: its length, and the ethertype and first byte of what it carries.
    uint32_t payload = wire::ether_header_len; // port: after the ethertype
    if (in == media_kind::vlan || in == media_kind::mpls) {
        payload += 4;
    }
    if (avail < payload + (in == media_kind::vlan ? 2u : 0u)) {
        *why = drop_reason::truncated;
        return false;
    }
    uint8_t* h = out;
    const party_action a = p.action();
    switch (a) {
    case forward:
        h = put_macs(h, p);
        c->consumed = 12;
        break;
    case swap:
        h = put_macs(h, p);
        h = put16(h, wire::ethertype_mpls);
        h = put32(h, wire::swap_mpls_entry(wire::load_be32(f + 14), p.out_key));
        c->consumed = 18;
        break;
    case retag:
    case untag: {
        h = put_macs(h, p);
        if (a == retag) {
            h = put16(h, wire::ethertype_vlan);
            h = put16(h, wire::swap_vlan_tci(wire::load_be16(f + 14), uint16_t(p.out_key)));
        }
        c->consumed = 16; // the inner ethertype follows
        break;
    }
    case tag: {
        const uint16_t ethertype = wire::load_be16(f + 12);
        uint8_t pcp = 0;
        if (is_ip(ethertype)) {
            if (avail < 16) {
                *why = drop_reason::truncated;
                return false;
            }
            pcp = ip_precedence(f + 14, ethertype);
        }
        h = put_macs(h, p);
        h = put16(h, wire::ethertype_vlan);
        h = put16(h, uint16_t(pcp << 13 | (p.out_key & 0x0fff)));
        c->consumed = 12; // the frame's ethertype follows
        break;
    }
    case push:
    case encap: {
        // The frame's own ethertype and what it carries (after the tag, VLAN in).
        const uint32_t type_at = in == media_kind::vlan ? 16 : 12;
        const uint16_t ethertype = wire::load_be16(f + type_at);
        const uint8_t* ip = f + type_at + 2;
        const bool ip_inside = is_ip(ethertype) && avail >= type_at + 2 + 9;
        if (a == push && !ip_inside) {
            *why = is_ip(ethertype) ? drop_reason::truncated : drop_reason::unreadable_payload;
            return false;
        }
        uint8_t tc = 0;
        if (in == media_kind::vlan) {
            tc = uint8_t(wire::load_be16(f + 14) >> 13);
        } else if (ip_inside) {
            tc = ip_precedence(ip, ethertype);
        }
        uint8_t ttl = pipe_ttl;
        if (a == push && !p.ttl_pipe) {
            const uint8_t ip_ttl = ip[ttl_offset(ethertype)];
            if (ip_ttl <= 1) {
                *why = drop_reason::ttl_expired;
                return false;
            }
            ttl = uint8_t(ip_ttl - 1);
        }
        h = put_macs(h, p);
        h = put16(h, wire::ethertype_mpls);
        h = put32(h, wire::make_mpls_entry(p.out_key, tc, true, ttl));
        if (a == encap) {
            if (p.control_word) {
                h = put32(h, 0);
            }
            c->consumed = 0;
        } else {
            c->consumed = type_at + 2;
        }
        break;
    }
    case pop:
    case pop_tag: {
        const wire::mpls_entry top{wire::load_be32(f + 14)};
        uint16_t ethertype = wire::ethertype_mpls;
        if (top.bottom()) {
            if (avail < 19) {
                *why = drop_reason::truncated;
                return false;
            }
            const uint8_t version = f[18] >> 4;
            if (version != 4 && version != 6) {
                *why = drop_reason::unreadable_payload;
                return false;
            }
            ethertype = version == 4 ? ethertype_ipv4 : ethertype_ipv6;
        }
        h = put_macs(h, p);
        if (a == pop_tag) {
            h = put16(h, wire::ethertype_vlan);
            h = put16(h, uint16_t(top.tc() << 13 | (p.out_key & 0x0fff)));
        }
        h = put16(h, ethertype);
        c->consumed = 18;
        if (!p.ttl_pipe) {
            // The exposed TTL is rewritten: the bytes up to it (and the IPv4 checksum) become
            // part of the header.
            const uint32_t exposed = ethertype == wire::ethertype_mpls ? 4
                                     : ethertype == ethertype_ipv4     ? 12
                                                                       : 8;
            if (avail < 18 + exposed) {
                *why = drop_reason::truncated;
                return false;
            }
            std::memcpy(h, f + 18, exposed);
            const uint8_t ttl = uint8_t(top.ttl() - 1); // > 0: the worker dropped TTL <= 1
            if (ethertype == ethertype_ipv4) {
                set_ipv4_ttl(h, ttl);
            } else {
                h[ethertype == ethertype_ipv6 ? 7 : 3] = ttl;
            }
            h += exposed;
            c->consumed += exposed;
        }
        break;
    }
    case decap:
    case decap_tag: {
        const wire::mpls_entry top{wire::load_be32(f + 14)};
        uint32_t inner = 18;
        if (p.control_word) {
            if (avail < inner + control_word_len) {
                *why = drop_reason::truncated;
                return false;
            }
            if ((f[inner] >> 4) != 0) {
                *why = drop_reason::unreadable_payload;
                return false;
            }
            inner += control_word_len;
        }
        if (!top.bottom()) {
            *why = drop_reason::unreadable_payload;
            return false;
        }
        if (len < inner + wire::ether_header_len || avail < inner + 12) {
            *why = drop_reason::truncated;
            return false;
        }
        c->consumed = inner;
        if (a == decap_tag) {
            std::memcpy(h, f + inner, 12);
            h += 12;
            h = put16(h, wire::ethertype_vlan);
            h = put16(h, uint16_t(top.tc() << 13 | (p.out_key & 0x0fff)));
            c->consumed += 12;
        }
        break;
    }
    }
    c->header_len = uint32_t(h - out);
    return true;
}

} // namespace vcplane::edge
