// The edge actions byte for byte (dataplane/edge.hh): each party's copy of a frame is built
// from the frame and compared with the frame written out by hand.

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "dataplane/edge.hh"
#include "support/frame_bytes.hh"

namespace vcplane {
namespace {

using test::be16;
using test::be32;
using test::bytes;
using test::cat;

const bytes hop = {0x02, 0, 0, 0, 0, 0x01};        // the party's next hop
const bytes port_mac = {0x02, 0, 0, 0, 0, 0xee};   // its egress port
const bytes sender = {0x02, 0, 0, 0, 0, 0xaa};     // the frame's source
const bytes switch_mac = {0x02, 0, 0, 0, 0, 0xbb}; // the frame's destination
const bytes payload = {'m', 'a', 'r', 'k', 'e', 't', ' ', 'd', 'a', 't', 'a'};

bytes macs(const bytes& dst, const bytes& src) {
    return cat({dst, src});
}

// An IPv4 header (TOS tos, TTL ttl) with a correct checksum, and the payload.
bytes ipv4(uint8_t tos, uint8_t ttl) {
    bytes h = {0x45, tos,  0,    uint8_t(20 + payload.size()),
               0x12, 0x34, 0x40, 0,
               ttl,  17,   0,    0,
               192,  0,    2,    1,
               239,  1,    1,    1};
    const uint16_t sum = test::ipv4_checksum(h.data());
    h[10] = uint8_t(sum >> 8);
    h[11] = uint8_t(sum);
    return cat({h, payload});
}
// An IPv6 header (traffic class tc, hop limit hl) and the payload.
bytes ipv6(uint8_t tc, uint8_t hl) {
    bytes h = {uint8_t(0x60 | tc >> 4), uint8_t(tc << 4), 0, 0, 0, uint8_t(payload.size()), 17, hl};
    h.resize(40, 0x20);
    return cat({h, payload});
}

party make_party(party_action a, uint32_t key, bool control_word = false, bool pipe = false) {
    party p{};
    std::copy(hop.begin(), hop.end(), p.dst_mac);
    std::copy(port_mac.begin(), port_mac.end(), p.src_mac);
    p.out_key = key;
    p.action_code = uint8_t(a);
    p.control_word = control_word;
    p.ttl_pipe = pipe;
    return p;
}

// The copy party p makes of frame f (entered on media in), or the drop reason.
struct result {
    bytes copy;
    bool made;
    drop_reason why;
};
result copy_of(const bytes& f, media_kind in, const party& p) {
    uint8_t header[edge::max_header];
    edge::cut c;
    drop_reason why{};
    edge::ingress frame;
    if (!edge::read_ingress(f.data(), uint32_t(f.size()), uint32_t(f.size()), in, &frame, &why) ||
        !edge::build_header(frame, p, header, &c, &why)) {
        return {{}, false, why};
    }
    EXPECT_LE(c.header_len, edge::max_header);
    bytes out(header, header + c.header_len);
    out.insert(out.end(), f.begin() + c.consumed, f.end());
    return {out, true, why};
}
bytes made(const bytes& f, media_kind in, const party& p) {
    result r = copy_of(f, in, p);
    EXPECT_TRUE(r.made) << drop_reason_name(r.why);
    return r.copy;
}

const bytes untagged_v4 = cat({macs(switch_mac, sender), be16(0x0800), ipv4(0xb8, 64)}); // EF
const bytes tagged_v4 =
    cat({macs(switch_mac, sender), be16(0x8100), be16(5 << 13 | 100), be16(0x0800), ipv4(0, 64)});
bytes labelled(const bytes& inner, uint32_t label, uint8_t tc, bool bottom, uint8_t ttl) {
    return cat({macs(switch_mac, sender), be16(0x8847),
                be32(wire::make_mpls_entry(label, tc, bottom, ttl)), inner});
}

TEST(edge, forward_rewrites_the_addresses_only) {
    EXPECT_EQ(made(untagged_v4, media_kind::port, make_party(party_action::forward, 0)),
              cat({macs(hop, port_mac), be16(0x0800), ipv4(0xb8, 64)}));
}

TEST(edge, push_puts_a_label_over_ip_with_ttl_and_tc_by_rule) {
    // Uniform: TTL one less than the IP TTL; TC the IP precedence (EF = 0xb8: precedence 5).
    EXPECT_EQ(made(untagged_v4, media_kind::port, make_party(party_action::push, 2000)),
              cat({macs(hop, port_mac), be16(0x8847),
                   be32(wire::make_mpls_entry(2000, 5, true, 63)), ipv4(0xb8, 64)}));
    // Pipe: 255, the IP header untouched.
    EXPECT_EQ(
        made(untagged_v4, media_kind::port, make_party(party_action::push, 2000, false, true)),
        cat({macs(hop, port_mac), be16(0x8847), be32(wire::make_mpls_entry(2000, 5, true, 255)),
             ipv4(0xb8, 64)}));
    // From a VLAN: the tag goes, TC is its PCP.
    EXPECT_EQ(made(tagged_v4, media_kind::vlan, make_party(party_action::push, 2000)),
              cat({macs(hop, port_mac), be16(0x8847),
                   be32(wire::make_mpls_entry(2000, 5, true, 63)), ipv4(0, 64)}));
    // IPv6: traffic class 0x60 is precedence 3, the hop limit is the TTL.
    const bytes v6 = cat({macs(switch_mac, sender), be16(0x86dd), ipv6(0x60, 10)});
    EXPECT_EQ(made(v6, media_kind::port, make_party(party_action::push, 16)),
              cat({macs(hop, port_mac), be16(0x8847), be32(wire::make_mpls_entry(16, 3, true, 9)),
                   ipv6(0x60, 10)}));
}

TEST(edge, push_refuses_what_it_cannot_carry) {
    const bytes arp = cat({macs(switch_mac, sender), be16(0x0806), payload, payload});
    EXPECT_EQ(copy_of(arp, media_kind::port, make_party(party_action::push, 2000)).why,
              drop_reason::unreadable_payload);
    const bytes last_hop = cat({macs(switch_mac, sender), be16(0x0800), ipv4(0, 1)});
    EXPECT_EQ(copy_of(last_hop, media_kind::port, make_party(party_action::push, 2000)).why,
              drop_reason::ttl_expired);
    // Pipe does not read the IP TTL.
    EXPECT_TRUE(
        copy_of(last_hop, media_kind::port, make_party(party_action::push, 2000, false, true))
            .made);
    const bytes runt = cat({macs(switch_mac, sender), be16(0x0800), bytes{0x45, 0}});
    EXPECT_EQ(copy_of(runt, media_kind::port, make_party(party_action::push, 2000)).why,
              drop_reason::truncated);
}

TEST(edge, encap_carries_the_whole_frame_under_a_label_and_control_word) {
    EXPECT_EQ(made(untagged_v4, media_kind::port, make_party(party_action::encap, 3000, true)),
              cat({macs(hop, port_mac), be16(0x8847),
                   be32(wire::make_mpls_entry(3000, 5, true, 255)), be32(0), untagged_v4}));
    EXPECT_EQ(made(tagged_v4, media_kind::vlan, make_party(party_action::encap, 3000)),
              cat({macs(hop, port_mac), be16(0x8847),
                   be32(wire::make_mpls_entry(3000, 5, true, 255)), tagged_v4}));
}

// A port connection carries whatever it receives: a tagged frame's tag is read as on a VLAN
// connection (the README's push rule: "the Ethernet header's ethertype and any tag").
TEST(edge, a_tagged_frame_into_a_port_call_is_pushed_with_its_pcp) {
    // IPv4 under a tag of PCP 5 (TOS 0): the tag and ethertype go, TC 5, TTL one less.
    EXPECT_EQ(made(tagged_v4, media_kind::port, make_party(party_action::push, 2000)),
              cat({macs(hop, port_mac), be16(0x8847),
                   be32(wire::make_mpls_entry(2000, 5, true, 63)), ipv4(0, 64)}));
    // Encapsulated whole, the label's TC is the tag's PCP.
    EXPECT_EQ(made(tagged_v4, media_kind::port, make_party(party_action::encap, 3000, true)),
              cat({macs(hop, port_mac), be16(0x8847),
                   be32(wire::make_mpls_entry(3000, 5, true, 255)), be32(0), tagged_v4}));
    // A second tag in front of it keeps the frame's PCP.
    EXPECT_EQ(made(tagged_v4, media_kind::port, make_party(party_action::tag, 7)),
              cat({macs(hop, port_mac), be16(0x8100), be16(5 << 13 | 7),
                   bytes(tagged_v4.begin() + 12, tagged_v4.end())}));
    // A tag over something other than IP is not pushed; a frame cut inside its tag is short.
    const bytes tagged_arp =
        cat({macs(switch_mac, sender), be16(0x8100), be16(3 << 13 | 9), be16(0x0806), payload});
    EXPECT_EQ(copy_of(tagged_arp, media_kind::port, make_party(party_action::push, 2000)).why,
              drop_reason::unreadable_payload);
    const bytes cut_tag = cat({macs(switch_mac, sender), be16(0x8100), bytes{0xa0}});
    EXPECT_EQ(copy_of(cut_tag, media_kind::port, make_party(party_action::forward, 0)).why,
              drop_reason::truncated);
}

TEST(edge, pop_exposes_ip_and_carries_the_ttl_down_uniformly) {
    const bytes in = labelled(ipv4(0, 64), 1000, 6, true, 30);
    // Uniform: the IPv4 TTL becomes 29 and the checksum stays right.
    const bytes popped = made(in, media_kind::mpls, make_party(party_action::pop, 0));
    EXPECT_EQ(popped, cat({macs(hop, port_mac), be16(0x0800), ipv4(0, 29)}));
    EXPECT_EQ(test::ipv4_checksum(popped.data() + 14), 0);
    // Pipe: the IP header as it was.
    EXPECT_EQ(made(in, media_kind::mpls, make_party(party_action::pop, 0, false, true)),
              cat({macs(hop, port_mac), be16(0x0800), ipv4(0, 64)}));
    // IPv6 by its first nibble; a tag with PCP from TC.
    const bytes v6 = labelled(ipv6(0, 64), 1000, 6, true, 30);
    EXPECT_EQ(
        made(v6, media_kind::mpls, make_party(party_action::pop_tag, 42)),
        cat({macs(hop, port_mac), be16(0x8100), be16(6 << 13 | 42), be16(0x86dd), ipv6(0, 29)}));
    // Not the bottom label: what is exposed is the next label, its TTL carried down.
    const bytes stacked = cat({macs(switch_mac, sender), be16(0x8847),
                               be32(wire::make_mpls_entry(1000, 0, false, 30)),
                               be32(wire::make_mpls_entry(77, 0, true, 200)), ipv4(0, 64)});
    EXPECT_EQ(made(stacked, media_kind::mpls, make_party(party_action::pop, 3)),
              cat({macs(hop, port_mac), be16(0x8847), be32(wire::make_mpls_entry(77, 0, true, 29)),
                   ipv4(0, 64)}));
    // Neither IPv4 nor IPv6 under the bottom label.
    EXPECT_EQ(copy_of(labelled(cat({bytes{0x11}, payload}), 1000, 0, true, 30), media_kind::mpls,
                      make_party(party_action::pop, 0))
                  .why,
              drop_reason::unreadable_payload);
}

TEST(edge, decap_hands_back_the_inner_frame_bit_for_bit) {
    const bytes customer = cat({macs({0x00, 0x11, 0x22, 0x33, 0x44, 0x55}, sender), be16(0x88b5),
                                payload, payload, payload, payload});
    EXPECT_EQ(made(labelled(customer, 500, 3, true, 64), media_kind::mpls,
                   make_party(party_action::decap, 0)),
              customer);
    // With the control word: skipped; a first nibble other than 0 is not a control word.
    EXPECT_EQ(made(labelled(cat({be32(0), customer}), 500, 3, true, 64), media_kind::mpls,
                   make_party(party_action::decap, 0, true)),
              customer);
    EXPECT_EQ(copy_of(labelled(cat({be32(0x40000000), customer}), 500, 3, true, 64),
                      media_kind::mpls, make_party(party_action::decap, 0, true))
                  .why,
              drop_reason::unreadable_payload);
    // Tagged: the tag after the inner frame's own addresses, PCP from TC.
    EXPECT_EQ(made(labelled(customer, 500, 3, true, 64), media_kind::mpls,
                   make_party(party_action::decap_tag, 300)),
              cat({bytes(customer.begin(), customer.begin() + 12), be16(0x8100),
                   be16(3 << 13 | 300), bytes(customer.begin() + 12, customer.end())}));
    // An inner frame too short for an Ethernet header.
    EXPECT_EQ(copy_of(labelled(bytes(10, 0), 500, 3, true, 64), media_kind::mpls,
                      make_party(party_action::decap, 0))
                  .why,
              drop_reason::truncated);
}

TEST(edge, tag_untag_and_retag) {
    EXPECT_EQ(
        made(untagged_v4, media_kind::port, make_party(party_action::tag, 7)),
        cat({macs(hop, port_mac), be16(0x8100), be16(5 << 13 | 7), be16(0x0800), ipv4(0xb8, 64)}));
    EXPECT_EQ(made(tagged_v4, media_kind::vlan, make_party(party_action::untag, 0)),
              cat({macs(hop, port_mac), be16(0x0800), ipv4(0, 64)}));
    EXPECT_EQ(
        made(tagged_v4, media_kind::vlan, make_party(party_action::retag, 200)),
        cat({macs(hop, port_mac), be16(0x8100), be16(5 << 13 | 200), be16(0x0800), ipv4(0, 64)}));
    // A non-IP frame is tagged with PCP 0.
    const bytes arp = cat({macs(switch_mac, sender), be16(0x0806), payload, payload});
    EXPECT_EQ(made(arp, media_kind::port, make_party(party_action::tag, 7)),
              cat({macs(hop, port_mac), be16(0x8100), be16(7), be16(0x0806), payload, payload}));
}

TEST(edge, swap_in_an_edge_call_is_the_core_swap) {
    const bytes in = labelled(ipv4(0, 64), 1000, 6, true, 30);
    EXPECT_EQ(made(in, media_kind::mpls, make_party(party_action::swap, 2000)),
              cat({macs(hop, port_mac), be16(0x8847),
                   be32(wire::make_mpls_entry(2000, 6, true, 29)), ipv4(0, 64)}));
}

TEST(edge, a_frame_shorter_than_its_ingress_header_is_truncated) {
    for (party_action a : {party_action::pop, party_action::decap, party_action::swap}) {
        EXPECT_EQ(copy_of(bytes(17, 0), media_kind::mpls, make_party(a, 0)).why,
                  drop_reason::truncated);
    }
    EXPECT_EQ(copy_of(bytes(17, 0), media_kind::vlan, make_party(party_action::untag, 0)).why,
              drop_reason::truncated);
}

} // namespace
} // namespace vcplane
