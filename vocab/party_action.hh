#pragma once
// What a party's copy of a frame becomes on its way out: the egress action, derived from the
// call's ingress media, the party's egress media and out-key, and the call's encapsulation.
// The file, the NPI and the dataplane all use this one derivation (docs/design.md §3.3).
//
//   ingress \ egress   mpls (label)        mpls (label 3)   vlan (VID)          port
//   mpls               swap                pop (ip only)    pop_tag | decap_tag pop | decap
//   vlan               push | encap        refused          retag               untag
//   port               push | encap        refused          tag                 forward
//
// where the left of "a | b" is for a call whose label carries IP (payload ip) and the right
// for one whose label carries a whole Ethernet frame (payload ethernet: a pseudowire).

#include <cstdint>
#include <optional>

#include "vocab/media.hh"

namespace vcplane {

// What an MPLS label of the call carries, where a label is pushed or popped.
enum class payload_kind : uint8_t {
    ip,       // an IPv4 or IPv6 packet (or, below a non-bottom label, the rest of the stack)
    ethernet, // an Ethernet frame, with or without the RFC 4385 control word
};

template <>
struct enum_names<payload_kind> {
    static constexpr named<payload_kind> list[] = {{payload_kind::ip, "ip"},
                                                   {payload_kind::ethernet, "ethernet"}};
};

// RFC 3443: uniform, the IP TTL and the label's are one count (copied at push and pop);
// pipe, the label's TTL starts at 255 and the IP TTL is left as it is.
enum class ttl_model : uint8_t { uniform, pipe };

template <>
struct enum_names<ttl_model> {
    static constexpr named<ttl_model> list[] = {{ttl_model::uniform, "uniform"},
                                                {ttl_model::pipe, "pipe"}};
};

// How a call's frames are carried where its media change: the same for every party.
struct call_encapsulation {
    payload_kind payload = payload_kind::ip;
    bool control_word = false; // ethernet only: a 4-byte RFC 4385 control word after the label
    ttl_model ttl = ttl_model::uniform;

    bool operator==(const call_encapsulation&) const = default;
};

enum class party_action : uint8_t {
    swap,    // MPLS in, MPLS out: the label replaced, TTL one less
    retag,   // VLAN in, VLAN out: the VID replaced
    forward, // port in, port out: as received, addresses rewritten
    push,    // VLAN or port in, MPLS out: the Ethernet header's ethertype (and tag) become a label
    encap,   // VLAN or port in, MPLS out: the whole frame as received under a label (pseudowire)
    pop,     // MPLS in, port or implicit null out: the payload as plain Ethernet
    pop_tag, // MPLS in, VLAN out: the payload as plain Ethernet with a tag
    decap,   // MPLS in, port out: the pseudowire's inner frame, as it was sent in
    decap_tag, // MPLS in, VLAN out: the inner frame with a tag inserted after its addresses
    tag,       // port in, VLAN out: a tag inserted after the addresses
    untag,     // VLAN in, port out: the tag taken out
};

template <>
struct enum_names<party_action> {
    using enum party_action;
    static constexpr named<party_action> list[] = {
        {swap, "swap"},           {retag, "retag"}, {forward, "forward"}, {push, "push"},
        {encap, "encap"},         {pop, "pop"},     {pop_tag, "pop_tag"}, {decap, "decap"},
        {decap_tag, "decap_tag"}, {tag, "tag"},     {untag, "untag"}};
};

inline const char* party_action_name(party_action a) {
    return name_of(a);
}

// Whether the action is a header rewrite in place of the same length (the core path's swap
// and retag): every other action changes the frame's length or reads its payload.
constexpr bool is_edge_action(party_action a) {
    return a != party_action::swap && a != party_action::retag;
}

// Whether the copy leaves with the inner frame's own addresses (no next hop of the party's).
constexpr bool keeps_inner_addresses(party_action a) {
    return a == party_action::decap || a == party_action::decap_tag;
}

enum class action_problem : uint8_t {
    none,
    implicit_null_needs_label,   // label 3 on a call whose ingress carries no label
    implicit_null_on_pseudowire, // label 3 would hand the inner frame to an MPLS next hop
    control_word_needs_ethernet, // a control word on a call whose label carries IP
};

struct derived_action {
    party_action action = party_action::swap;
    action_problem problem = action_problem::none;
};

// The call's own rule, before any party: a control word only on a pseudowire. Checked where a
// call is made (the file's reader, the call managers); derive_action assumes it holds.
constexpr action_problem check_encapsulation(const call_encapsulation& e) {
    return e.control_word && e.payload != payload_kind::ethernet
               ? action_problem::control_word_needs_ethernet
               : action_problem::none;
}

// The action of a party leaving through `egress` with `out_key` (checked for its range by the
// caller) on a call entering through `ingress`, whose encapsulation check_encapsulation passed.
constexpr derived_action derive_action(media_kind ingress, media_kind egress, uint32_t out_key,
                                       const call_encapsulation& e) {
    using enum party_action;
    const bool ip = e.payload == payload_kind::ip;
    switch (ingress) {
    case media_kind::mpls:
        switch (egress) {
        case media_kind::mpls:
            if (out_key == implicit_null_label) {
                return ip ? derived_action{pop}
                          : derived_action{pop, action_problem::implicit_null_on_pseudowire};
            }
            return {swap};
        case media_kind::vlan: return {ip ? pop_tag : decap_tag};
        case media_kind::port: return {ip ? pop : decap};
        }
        break;
    case media_kind::vlan:
    case media_kind::port:
        if (egress == media_kind::mpls) {
            if (out_key == implicit_null_label) {
                return {push, action_problem::implicit_null_needs_label};
            }
            return {ip ? push : encap};
        }
        if (egress == media_kind::vlan) {
            return {ingress == media_kind::vlan ? retag : tag};
        }
        return {ingress == media_kind::vlan ? untag : forward};
    }
    return {swap};
}

inline const char* action_problem_text(action_problem p) {
    switch (p) {
    case action_problem::none: return "";
    case action_problem::implicit_null_needs_label:
        return "label 3 (implicit null) pops a label, but the call's ingress carries none";
    case action_problem::implicit_null_on_pseudowire:
        return "label 3 (implicit null) would hand a pseudowire's inner frame to an MPLS next "
               "hop: leave through a port or VLAN connection to decapsulate it";
    case action_problem::control_word_needs_ethernet:
        return "control_word is for payload = \"ethernet\" (a pseudowire)";
    }
    return "";
}

// The out-keys a party may name on an egress of media m: its key range, and for MPLS also
// label 3 (implicit null: pop).
constexpr bool party_key_fits(media_kind m, uint32_t key) {
    const key_range r = key_range_for(m);
    return (key >= r.min && key <= r.max) || (m == media_kind::mpls && key == implicit_null_label);
}

} // namespace vcplane
