#pragma once
// The edge actions (vocab/party_action.hh) on the wire: the header one party's copy of a
// frame gets in place of the frame's first bytes (docs/design.md §3.3). Pure functions of the
// frame's first bytes and the party, testable without EAL and inlined into the edge
// replicator (dataplane/edge_replicate.cc); no allocation.
//
// A frame's ingress header is read once (read_ingress), then each party's header is built from
// that reading (build_header). A copy is `header` followed by the frame from byte `consumed`
// on. The rules applied (TTL under uniform and pipe, TC and PCP, the ethertype after a pop,
// the control word) are stated in docs/design.md §3.3; tests/unit/edge_test.cc holds this file
// to them byte by byte.

#include <cstdint>
#include <cstring>

#include "dataplane/counters.hh"
#include "dataplane/tables.hh"
#include "dataplane/wire.hh"
#include "vocab/media.hh"
#include "vocab/party_action.hh"

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

// What a frame's ingress header says, the same for every party.
struct ingress {
    const uint8_t* frame = nullptr;
    uint32_t avail = 0; // contiguous bytes at frame
    uint32_t len = 0;   // bytes in all
    media_kind media = media_kind::port;
    bool tagged = false;   // an 802.1Q tag follows the addresses (VLAN in, or a tagged frame)
    uint32_t type_at = 12; // offset of the ethertype of what the frame carries, after its tag
    uint16_t ethertype = 0;
    uint32_t top = 0; // MPLS in: the top label stack entry as received
    uint8_t cos = 0;  // the tag's PCP, else the IP precedence (when readable), else 0

    bool carries_ip() const noexcept {
        return ethertype == ethertype_ipv4 || ethertype == ethertype_ipv6;
    }
    const uint8_t* ip() const noexcept { return frame + type_at + 2; }
    uint32_t ip_avail() const noexcept { return avail - (type_at + 2); }
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
// The IP precedence of the packet at ip (ethertype known to be IPv4 or IPv6, 2 bytes readable).
inline uint8_t ip_precedence(const uint8_t* ip, uint16_t ethertype) noexcept {
    return ethertype == ethertype_ipv4 ? uint8_t(ip[1] >> 5) : uint8_t((ip[0] & 0x0f) >> 1);
}
// The IPv4 TTL or IPv6 hop limit's offset in its header.
inline uint32_t ttl_offset(uint16_t ethertype) noexcept {
    return ethertype == ethertype_ipv4 ? 8 : 7;
}
inline bool fail(drop_reason* why, drop_reason r) noexcept {
    *why = r;
    return false;
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

// swap, retag, untag and forward: the addresses, and the label or tag rewritten or dropped.
inline uint8_t* rewrite(const ingress& in, const party& p, uint8_t* h, cut* c) noexcept {
    h = put_macs(h, p);
    switch (p.action()) {
    case party_action::swap:
        h = put16(h, wire::ethertype_mpls);
        h = put32(h, wire::swap_mpls_entry(in.top, p.out_key));
        c->consumed = 18;
        break;
    case party_action::retag:
        h = put16(h, wire::ethertype_vlan);
        h = put16(h, wire::swap_vlan_tci(wire::load_be16(in.frame + 14), uint16_t(p.out_key)));
        c->consumed = 16; // the inner ethertype follows
        break;
    case party_action::untag: c->consumed = 16; break;
    default: c->consumed = 12; break; // forward: the frame's ethertype follows
    }
    return h;
}

// tag: a tag after the addresses, its PCP the frame's class of service.
inline uint8_t* tag(const ingress& in, const party& p, uint8_t* h, cut* c,
                    drop_reason* why) noexcept {
    if (!in.tagged && in.carries_ip() && in.ip_avail() < 2) {
        fail(why, drop_reason::truncated);
        return nullptr;
    }
    h = put_macs(h, p);
    h = put16(h, wire::ethertype_vlan);
    h = put16(h, uint16_t(in.cos << 13 | (p.out_key & 0x0fff)));
    c->consumed = 12; // the frame's ethertype (or its own tag) follows
    return h;
}

// push and encap: a label over the IP packet (the ethertype and any tag go), or over the
// whole frame as received (a pseudowire, with its control word).
inline uint8_t* push(const ingress& in, const party& p, uint8_t* h, cut* c,
                     drop_reason* why) noexcept {
    const bool is_push = p.action() == party_action::push;
    uint8_t ttl = pipe_ttl;
    if (is_push) {
        if (!in.carries_ip()) {
            fail(why, drop_reason::unreadable_payload);
            return nullptr;
        }
        if (in.ip_avail() < 9) {
            fail(why, drop_reason::truncated);
            return nullptr;
        }
        if (!p.ttl_pipe) {
            const uint8_t ip_ttl = in.ip()[ttl_offset(in.ethertype)];
            if (ip_ttl <= 1) {
                fail(why, drop_reason::ttl_expired);
                return nullptr;
            }
            ttl = uint8_t(ip_ttl - 1);
        }
    }
    h = put_macs(h, p);
    h = put16(h, wire::ethertype_mpls);
    h = put32(h, wire::make_mpls_entry(p.out_key, in.cos, true, ttl));
    if (is_push) {
        c->consumed = in.type_at + 2;
    } else {
        if (p.control_word) {
            h = put32(h, 0);
        }
        c->consumed = 0;
    }
    return h;
}

// pop and pop_tag: the label goes; what it exposes gets its ethertype (and TTL, uniform).
inline uint8_t* pop(const ingress& in, const party& p, uint8_t* h, cut* c,
                    drop_reason* why) noexcept {
    const wire::mpls_entry top{in.top};
    const uint8_t* f = in.frame;
    uint16_t ethertype = wire::ethertype_mpls;
    if (top.bottom()) {
        if (in.avail < 19) {
            fail(why, drop_reason::truncated);
            return nullptr;
        }
        const uint8_t version = f[18] >> 4;
        if (version != 4 && version != 6) {
            fail(why, drop_reason::unreadable_payload);
            return nullptr;
        }
        ethertype = version == 4 ? ethertype_ipv4 : ethertype_ipv6;
    }
    h = put_macs(h, p);
    if (p.action() == party_action::pop_tag) {
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
        if (in.avail < 18 + exposed) {
            fail(why, drop_reason::truncated);
            return nullptr;
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
    return h;
}

// decap and decap_tag: the label and control word go, the inner frame leaves as sent (with
// a tag inserted after its addresses).
inline uint8_t* decap(const ingress& in, const party& p, uint8_t* h, cut* c,
                      drop_reason* why) noexcept {
    const wire::mpls_entry top{in.top};
    uint32_t inner = 18;
    if (p.control_word) {
        if (in.avail < inner + control_word_len) {
            fail(why, drop_reason::truncated);
            return nullptr;
        }
        if ((in.frame[inner] >> 4) != 0) {
            fail(why, drop_reason::unreadable_payload);
            return nullptr;
        }
        inner += control_word_len;
    }
    if (!top.bottom()) {
        fail(why, drop_reason::unreadable_payload);
        return nullptr;
    }
    if (in.len < inner + wire::ether_header_len || in.avail < inner + 12) {
        fail(why, drop_reason::truncated);
        return nullptr;
    }
    c->consumed = inner;
    if (p.action() == party_action::decap_tag) {
        std::memcpy(h, in.frame + inner, 12);
        h += 12;
        h = put16(h, wire::ethertype_vlan);
        h = put16(h, uint16_t(top.tc() << 13 | (p.out_key & 0x0fff)));
        c->consumed += 12;
    }
    return h;
}

} // namespace detail

// Reads the ingress header of frame f (avail contiguous bytes of len in all) that entered on
// a connection of media `in`; false, with *why, when no party can have a copy of it.
inline bool read_ingress(const uint8_t* f, uint32_t avail, uint32_t len, media_kind in, ingress* r,
                         drop_reason* why) noexcept {
    *r = ingress{f, avail, len, in};
    if (in == media_kind::mpls) {
        if (avail < wire::ether_header_len + 4) {
            return detail::fail(why, drop_reason::truncated);
        }
        r->top = wire::load_be32(f + 14);
        return true;
    }
    // VLAN in, or a tagged frame on a port connection: the tag, then what the frame carries.
    if (avail < wire::ether_header_len) {
        return detail::fail(why, drop_reason::truncated);
    }
    r->tagged = in == media_kind::vlan || wire::load_be16(f + 12) == wire::ethertype_vlan;
    if (r->tagged) {
        if (avail < wire::ether_header_len + 4) {
            return detail::fail(why, drop_reason::truncated);
        }
        r->type_at = 16;
        r->cos = uint8_t(wire::load_be16(f + 14) >> 13);
    }
    r->ethertype = wire::load_be16(f + r->type_at);
    if (!r->tagged && r->carries_ip() && r->ip_avail() >= 2) {
        r->cos = detail::ip_precedence(r->ip(), r->ethertype);
    }
    return true;
}

// Party p's header for the frame `in` read; false, with *why, when the copy cannot be made.
// `out` holds max_header bytes.
inline bool build_header(const ingress& in, const party& p, uint8_t* out, cut* c,
                         drop_reason* why) noexcept {
    using enum party_action;
    uint8_t* h = nullptr;
    switch (p.action()) {
    case swap:
    case retag:
    case untag:
    case forward: h = detail::rewrite(in, p, out, c); break;
    case tag: h = detail::tag(in, p, out, c, why); break;
    case push:
    case encap: h = detail::push(in, p, out, c, why); break;
    case pop:
    case pop_tag: h = detail::pop(in, p, out, c, why); break;
    case decap:
    case decap_tag: h = detail::decap(in, p, out, c, why); break;
    }
    if (h == nullptr) {
        return false;
    }
    c->header_len = uint32_t(h - out);
    return true;
}

} // namespace vcplane::edge
