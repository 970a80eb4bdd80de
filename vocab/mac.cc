#include "vocab/mac.hh"

#include <cctype>
#include <fmt/format.h>

namespace vcplane {

std::optional<mac_address> parse_mac(std::string_view text) {
    if (text.size() != 17) {
        return std::nullopt;
    }
    const char sep = text[2];
    if (sep != ':' && sep != '-') {
        return std::nullopt;
    }
    mac_address mac{};
    for (size_t i = 0; i < 6; ++i) {
        const size_t at = i * 3;
        if (i > 0 && text[at - 1] != sep) {
            return std::nullopt;
        }
        unsigned byte = 0;
        for (size_t j = 0; j < 2; ++j) {
            const char c = text[at + j];
            if (!std::isxdigit(static_cast<unsigned char>(c))) {
                return std::nullopt;
            }
            byte = byte * 16 +
                   (std::isdigit(static_cast<unsigned char>(c))
                        ? unsigned(c - '0')
                        : unsigned(std::tolower(static_cast<unsigned char>(c)) - 'a' + 10));
        }
        mac[i] = static_cast<uint8_t>(byte);
    }
    return mac;
}

std::string format_mac(const mac_address& m) {
    return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4],
                       m[5]);
}

} // namespace vcplane
