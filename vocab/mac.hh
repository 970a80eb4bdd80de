#pragma once
// A MAC address, as the file, the protocol and the tables write it.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vcplane {

using mac_address = std::array<uint8_t, 6>;

// "02:00:5e:10:00:01" or "02-00-5e-10-00-01"; nullopt for anything else.
std::optional<mac_address> parse_mac(std::string_view text);
std::string format_mac(const mac_address& mac);

// The all-zero address is nobody's: a party sent there would be sent nowhere.
constexpr bool usable_next_hop(const mac_address& m) {
    return m != mac_address{};
}

} // namespace vcplane
