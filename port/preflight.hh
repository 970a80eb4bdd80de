#pragma once
// Start-up checks of the host: what a real server is missing for the config to run, one
// finding per line, each with the command that fixes it. Runs before EAL, reads only /proc
// and /sys, so `vcplaned --check` can run it too.

#include <string>
#include <vector>

#include "config/config.hh"

namespace vcplane {

struct preflight_finding {
    enum class severity { note, warning, fatal };
    severity level;
    std::string what;
    std::string fix; // empty for notes

    std::string line() const;
};

// root: where /proc and /sys are (tests point it at a fake tree).
std::vector<preflight_finding> preflight_host(const vcplane_config& cfg,
                                              const std::string& root = "");

bool has_fatal(const std::vector<preflight_finding>& findings);

} // namespace vcplane
