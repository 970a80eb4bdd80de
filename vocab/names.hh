#pragma once
// The one rule for the names an operator or an application gives: connections, calls, parties
// and services, in the file and through the socket alike. A name is 1..63 letters, digits,
// '-', '_' or '.', so that it goes into metric labels, log lines, file names and the CLI's
// tables as it is, without quoting. The file's reader refuses a name that breaks it; the call
// managers and the namespace refuse one that arrives through the socket.
// Header only, no state: any thread.

#include <cstddef>
#include <string_view>

namespace vcplane {

inline constexpr size_t max_name_length = 63;

// For refusals: "a call name is " + name_rule.
inline constexpr const char* name_rule = "1..63 letters, digits, '-', '_' or '.'";

constexpr bool valid_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
}

constexpr bool valid_name(std::string_view s) {
    if (s.empty() || s.size() > max_name_length) {
        return false;
    }
    for (char c : s) {
        if (!valid_name_char(c)) {
            return false;
        }
    }
    return true;
}

} // namespace vcplane
