// libFuzzer target: arbitrary bytes as a vcplane configuration file, parsed, validated and
// planned as a reload against the embedded default (what SIGHUP does with a file).
//
// Invariants, each a crash when broken (ASan and UBSan add theirs):
//   - a refusal is a config_error whose every problem names the file and a line (and, for a
//     TOML syntax error, the column);
//   - a file that parses plans a reload against the running (embedded) configuration without
//     throwing, and plans nothing against itself.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "config/config.hh"
#include "config/config_diff.hh"

namespace {

constexpr const char* source_name = "fuzz.toml";

[[noreturn]] void broken(const char* rule, const std::string& detail) {
    std::fprintf(stderr, "config_fuzz: broken invariant: %s\n%s\n", rule, detail.c_str());
    std::abort();
}

// The positive number at problem[i...], or 0; i moves past its digits.
unsigned long number_at(const std::string& problem, size_t& i) {
    unsigned long n = 0;
    while (i < problem.size() && problem[i] >= '0' && problem[i] <= '9' && n < 1'000'000'000) {
        n = n * 10 + unsigned(problem[i++] - '0');
    }
    return n;
}

// "fuzz.toml:LINE: ..." (a setting) or "fuzz.toml:LINE:COLUMN: ..." (TOML syntax).
bool names_a_line(const std::string& problem) {
    const std::string prefix = std::string(source_name) + ":";
    if (problem.compare(0, prefix.size(), prefix) != 0) {
        return false;
    }
    size_t i = prefix.size();
    if (number_at(problem, i) == 0) {
        return false;
    }
    if (problem.compare(i, 1, ":") == 0 && i + 1 < problem.size() && problem[i + 1] != ' ') {
        ++i;
        if (number_at(problem, i) == 0) {
            return false;
        }
    }
    return problem.compare(i, 2, ": ") == 0;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace vcplane;
    static const vcplane_config running =
        parse_config_string(embedded_default_config(), embedded_default_name);
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    vcplane_config next;
    try {
        next = parse_config_string(text, source_name);
    } catch (const config_error& e) {
        if (e.problems().empty()) {
            broken("a refusal has at least one problem", e.what());
        }
        for (const auto& p : e.problems()) {
            if (!names_a_line(p)) {
                broken("every problem names the file and a line", p);
            }
        }
        return 0;
    }
    try {
        (void)diff_configs(running, next);
        const reload_plan same = diff_configs(next, next);
        if (!same.empty()) {
            broken("a file plans nothing against itself",
                   same.steps.empty() ? same.restart_required.front() : same.steps.front().text());
        }
    } catch (const std::exception& e) {
        broken("a file that parses plans without error", e.what());
    }
    return 0;
}
