#pragma once
// Frames written out byte by byte for the tests that compare a copy with what it must be: a
// byte string, its concatenation, big-endian fields and the IPv4 header checksum.

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <vector>

namespace vcplane::test {

using bytes = std::vector<uint8_t>;

inline bytes cat(std::initializer_list<bytes> parts) {
    bytes out;
    for (const bytes& p : parts) {
        out.insert(out.end(), p.begin(), p.end());
    }
    return out;
}

inline bytes be16(uint16_t v) {
    return {uint8_t(v >> 8), uint8_t(v)};
}

inline bytes be32(uint32_t v) {
    return {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)};
}

// The one's complement sum over an IPv4 header's 20 bytes, as a receiver checks it: 0 when
// the checksum in it is right; over a header whose checksum field is 0, the checksum to write.
inline uint16_t ipv4_checksum(const uint8_t* h) {
    uint32_t sum = 0;
    for (size_t i = 0; i < 20; i += 2) {
        sum += uint32_t(h[i] << 8 | h[i + 1]);
    }
    while (sum >> 16) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return uint16_t(~sum);
}

} // namespace vcplane::test
