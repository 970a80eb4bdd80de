#pragma once
// The three media a connection can carry, and the key space of each (docs/design.md §3).
//
// mpls and vlan connections carry many VCs, told apart by the label or VID of each frame;
// a port connection is one VC itself: every frame it receives belongs to the one call whose
// ingress it is, and frames leave it untagged.

#include <cstdint>

#include "vocab/enum_names.hh"

namespace vcplane {

enum class media_kind : uint8_t { mpls, vlan, port };

template <>
struct enum_names<media_kind> {
    static constexpr named<media_kind> list[] = {
        {media_kind::mpls, "mpls"}, {media_kind::vlan, "vlan"}, {media_kind::port, "port"}};
};

inline const char* media_name(media_kind m) {
    return name_of(m);
}

// MPLS labels 0..15 are reserved (RFC 3032 and successors); VID 0 and 4095 are reserved (802.1Q).
// A port connection has a single key, 0: its one VC.
inline constexpr uint32_t mpls_label_min = 16;
inline constexpr uint32_t mpls_label_max = 1048575;
inline constexpr uint32_t vlan_vid_min = 1;
inline constexpr uint32_t vlan_vid_max = 4094;
inline constexpr uint32_t port_key = 0;

// The out-label that asks for the label to be popped (RFC 3032 implicit null): the party's
// copies leave its MPLS connection with the payload as plain Ethernet.
inline constexpr uint32_t implicit_null_label = 3;

struct key_range {
    uint32_t min;
    uint32_t max;
};

inline constexpr key_range key_range_for(media_kind m) {
    switch (m) {
    case media_kind::mpls: return {mpls_label_min, mpls_label_max};
    case media_kind::vlan: return {vlan_vid_min, vlan_vid_max};
    case media_kind::port: return {port_key, port_key};
    }
    return {1, 0};
}

// What a key is called in the file, the protocol and messages: "label", "vid"; a port
// connection has none.
inline const char* key_name(media_kind m) {
    return m == media_kind::mpls ? "label" : m == media_kind::vlan ? "vid" : "";
}

} // namespace vcplane
