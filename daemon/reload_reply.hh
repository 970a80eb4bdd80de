#pragma once
// The reply to a reload request (control protocol "reload", SIGHUP logs the same facts):
//   {"family": "config", "status": "SUCCESS" | "PARTIAL" | "INVALID", "code": 0 | 1 | 2,
//    "message": "...", "dry_run": bool, "restart_required": ["KEY: OLD -> NEW", ...],
//    "steps": [{"op", "call" | "service", "party", "why", "status", "detail"}, ...],
//    "unchanged": ["CALL", ...], "problems": ["FILE:LINE: KEY: ...", ...] (INVALID only)}
// PARTIAL: the file was valid but a step failed (e.g. a label a session holds); the rest of
// the plan was applied. INVALID: the file was refused and nothing changed.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "control/control_plane.hh"

namespace vcplane {

nlohmann::json reload_reply(const control_plane::reload_report& r);
nlohmann::json invalid_config_reply(const std::string& source,
                                    const std::vector<std::string>& problems);

} // namespace vcplane
