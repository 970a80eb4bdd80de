#include "daemon/reload_reply.hh"

#include <algorithm>
#include <fmt/format.h>

namespace vcplane {

using nlohmann::json;

json reload_reply(const control_plane::reload_report& r) {
    json steps = json::array();
    for (size_t i = 0; i < r.plan.steps.size(); ++i) {
        const reload_step& s = r.plan.steps[i];
        json j{{"op", reload_op_name(s.op)},
               {is_call_op(s.op) ? "call" : "service", s.call},
               {"why", s.why}};
        if (!s.party.empty()) {
            j["party"] = s.party;
        }
        if (i < r.outcomes.size()) {
            j["status"] = r.outcomes[i].status;
            if (!r.outcomes[i].detail.empty()) {
                j["detail"] = r.outcomes[i].detail;
            }
        }
        steps.push_back(std::move(j));
    }
    const size_t failed = size_t(std::count_if(r.outcomes.begin(), r.outcomes.end(),
                                               [](const auto& o) { return !o.succeeded(); }));
    std::string message;
    if (r.dry_run) {
        message = fmt::format("dry run: {} step(s) would be applied, {} change(s) need a restart",
                              r.plan.steps.size(), r.plan.restart_required.size());
    } else if (failed == 0) {
        message = fmt::format("{} step(s) applied, {} change(s) need a restart (not applied)",
                              r.plan.steps.size(), r.plan.restart_required.size());
    } else {
        message = fmt::format("{} of {} step(s) failed; the others were applied", failed,
                              r.plan.steps.size());
    }
    return json{{"family", "config"},          {"status", failed == 0 ? "SUCCESS" : "PARTIAL"},
                {"code", failed == 0 ? 0 : 1}, {"message", message},
                {"dry_run", r.dry_run},        {"restart_required", r.plan.restart_required},
                {"steps", std::move(steps)},   {"unchanged", r.plan.unchanged}};
}

json invalid_config_reply(const std::string& source, const std::vector<std::string>& problems) {
    return json{
        {"family", "config"},
        {"status", "INVALID"},
        {"code", 2},
        {"message", fmt::format("{} problem(s) in {}; nothing changed", problems.size(), source)},
        {"problems", problems}};
}

} // namespace vcplane
