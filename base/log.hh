#pragma once
// Control-plane logging: one line per event on stderr, which systemd's journal timestamps.
// Never include this from dataplane/: the worker path does not log.

#include <cstdio>
#include <fmt/format.h>

namespace vcplane::log {

enum class level { error, warning, notice, info, debug };

level threshold() noexcept;
void set_threshold(level l) noexcept;
void write(level l, const std::string& line) noexcept;

template <typename... Args>
void error(fmt::format_string<Args...> f, Args&&... args) {
    write(level::error, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void warning(fmt::format_string<Args...> f, Args&&... args) {
    if (threshold() >= level::warning) {
        write(level::warning, fmt::format(f, std::forward<Args>(args)...));
    }
}
template <typename... Args>
void notice(fmt::format_string<Args...> f, Args&&... args) {
    if (threshold() >= level::notice) {
        write(level::notice, fmt::format(f, std::forward<Args>(args)...));
    }
}
template <typename... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
    if (threshold() >= level::info) {
        write(level::info, fmt::format(f, std::forward<Args>(args)...));
    }
}

} // namespace vcplane::log
