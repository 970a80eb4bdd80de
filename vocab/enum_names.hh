#pragma once
// One list per enum: each value with the one name the file, the protocol, the CLI, logs and
// metrics spell it by. Printing (name_of) and parsing (parse_name) both read the list, and so
// does the "expected ..." part of a refusal (expected_names), so a name can change in one
// place only. An enum takes part by specialising enum_names<E> next to its definition:
//
//     template <> struct enum_names<media_kind> {
//         static constexpr named<media_kind> list[] = {{media_kind::mpls, "mpls"}, ...};
//     };
//
// The list must name every value once; name_of returns "?" for a value it lacks.
// Header only, no state: any thread.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace vcplane {

template <typename E>
struct named {
    E value;
    const char* name;
};

template <typename E>
struct enum_names; // specialised beside each enum

template <typename E>
constexpr const char* name_of(E value) {
    for (const auto& n : enum_names<E>::list) {
        if (n.value == value) {
            return n.name;
        }
    }
    return "?";
}

template <typename E>
constexpr std::optional<E> parse_name(std::string_view text) {
    for (const auto& n : enum_names<E>::list) {
        if (text == n.name) {
            return n.value;
        }
    }
    return std::nullopt;
}

// The names for a refusal: "\"mpls\", \"vlan\" or \"port\"".
template <typename E>
std::string expected_names() {
    std::string out;
    const size_t n = std::size(enum_names<E>::list);
    for (size_t i = 0; i < n; ++i) {
        if (i > 0) {
            out += i + 1 == n ? " or " : ", ";
        }
        out += '"';
        out += enum_names<E>::list[i].name;
        out += '"';
    }
    return out;
}

} // namespace vcplane
