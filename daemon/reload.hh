#pragma once
// The one reload path: read the file again (or, for a dry run, a client's text), plan the
// difference to what the switch runs, apply it live (calls and services, control_plane::reload)
// unless it is a dry run, count the outcome, and make the reply (daemon/reload_reply.hh).
// SIGHUP, the control protocol's "reload" (vcplanectl reload) and `vcplaned --plan` all come
// here. An invalid file changes nothing: its problems are logged and returned. Control thread
// only.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "config/config.hh"
#include "control/control_plane.hh"

namespace vcplane {

class reload_path {
public:
    // source: the file the switch was started from (or the embedded default's name).
    reload_path(std::string source, control_plane& plane);

    nlohmann::json run(bool dry_run, const std::optional<std::string>& text);

    // `vcplaned --plan` with no switch answering: what starting with cfg would make.
    static nlohmann::json plan_without_switch(const vcplane_config& cfg);

    // For vcplane_config_reloads_total and vcplane_config_last_reload_timestamp_seconds.
    struct counts {
        uint64_t applied = 0, partial = 0, invalid = 0;
        double last_unix = 0; // 0: never reloaded
    };
    const counts& outcomes() const { return counts_; }

private:
    // The file again, or the client's text; throws config_error.
    vcplane_config read(const std::optional<std::string>& text) const;

    std::string source_;
    control_plane& plane_;
    counts counts_;
};

} // namespace vcplane
