#pragma once
// The two media a connection can carry, and the key space of each (docs/design.md §3).

#include <cstdint>

namespace vcplane {

enum class media_kind : uint8_t { mpls, vlan };

inline const char* media_name(media_kind m) {
    return m == media_kind::mpls ? "mpls" : "vlan";
}

// MPLS labels 0..15 are reserved (RFC 3032 and successors); VID 0 and 4095 are reserved (802.1Q).
inline constexpr uint32_t mpls_label_min = 16;
inline constexpr uint32_t mpls_label_max = 1048575;
inline constexpr uint32_t vlan_vid_min = 1;
inline constexpr uint32_t vlan_vid_max = 4094;

struct key_range {
    uint32_t min;
    uint32_t max;
};

inline constexpr key_range key_range_for(media_kind m) {
    return m == media_kind::mpls ? key_range{mpls_label_min, mpls_label_max}
                                 : key_range{vlan_vid_min, vlan_vid_max};
}

} // namespace vcplane
