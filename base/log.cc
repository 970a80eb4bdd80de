#include "base/log.hh"

#include <atomic>

namespace vcplane::log {

namespace {
std::atomic<level> current{level::notice};
constexpr const char* names[] = {"error", "warning", "notice", "info", "debug"};
} // namespace

level threshold() noexcept {
    return current.load(std::memory_order_relaxed);
}
void set_threshold(level l) noexcept {
    current.store(l, std::memory_order_relaxed);
}

void write(level l, const std::string& line) noexcept {
    // One fprintf per line keeps lines whole when the metrics thread logs too.
    std::fprintf(stderr, "vcplaned: %s: %s\n", names[static_cast<int>(l)], line.c_str());
}

} // namespace vcplane::log
