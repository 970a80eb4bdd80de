#include "daemon/reload.hh"

#include <algorithm>
#include <chrono>

#include "base/log.hh"
#include "daemon/reload_reply.hh"

namespace vcplane {

namespace {

double unix_now() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

} // namespace

reload_path::reload_path(std::string source, control_plane& plane)
    : source_(std::move(source))
    , plane_(plane) {}

vcplane_config reload_path::read(const std::optional<std::string>& text) const {
    if (text) {
        return parse_config_string(*text, "<request>");
    }
    if (source_ == embedded_default_name) {
        return parse_config_string(embedded_default_config(), embedded_default_name);
    }
    return parse_config_file(source_);
}

nlohmann::json reload_path::run(bool dry_run, const std::optional<std::string>& text) {
    const std::string source = text ? std::string("<request>") : source_;
    vcplane_config next;
    try {
        next = read(text);
    } catch (const config_error& e) {
        if (!dry_run) {
            ++counts_.invalid;
            counts_.last_unix = unix_now();
            for (const auto& p : e.problems()) {
                log::error("reload: {}", p);
            }
            log::error("reload: {} problem(s) in {}; nothing changed", e.problems().size(), source);
        }
        return invalid_config_reply(source, e.problems());
    }
    const auto report = plane_.reload(next, dry_run);
    if (!dry_run) {
        const bool all_ok = std::all_of(report.outcomes.begin(), report.outcomes.end(),
                                        [](const auto& o) { return o.succeeded(); });
        ++(all_ok ? counts_.applied : counts_.partial);
        counts_.last_unix = unix_now();
        log::notice("reload of {}: {} step(s), {} unchanged call(s), {} change(s) need a "
                    "restart{}",
                    source, report.plan.steps.size(), report.plan.unchanged.size(),
                    report.plan.restart_required.size(),
                    all_ok ? "" : "; some steps failed (see above)");
    }
    return reload_reply(report);
}

nlohmann::json reload_path::plan_without_switch(const vcplane_config& cfg) {
    vcplane_config empty = cfg;
    empty.calls.clear();
    return reload_reply(control_plane::reload_report{diff_configs(empty, cfg), {}, true});
}

} // namespace vcplane
