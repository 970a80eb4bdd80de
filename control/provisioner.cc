#include "control/provisioner.hh"

#include <fmt/format.h>

#include "base/log.hh"

namespace vcplane {

using cstatus = callmgmt::status;

provisioner::provisioner(const vcplane_config& cfg, const switch_state& state, nmr::registrar& reg,
                         nmr::registrar::post_fn post)
    : calls_(cfg.calls)
    , state_(state)
    , bindings_(reg, *this, "provisioner/config")
    , post_(std::move(post)) {
    // A call manager that appears may be the one a waiting call needs.
    bindings_.after_attach = [this](binding&) { make_ready_calls(); };
}

provisioner::~provisioner() = default;

nmr::status provisioner::register_client() {
    return bindings_.register_client();
}

void provisioner::deregister_and_wait(const std::function<void()>& pump) {
    leaving_ = true;
    if (bindings_.deregister() == nmr::status::pending) {
        bindings_.wait_for_deregister(pump);
    }
}

void provisioner::connection_up() {
    converge();
}

void provisioner::converge() {
    if (leaving_) {
        return;
    }
    retire_unnamed();
    make_ready_calls();
    for (const auto& call : calls_) {
        auto it = made_.find(call.name);
        if (it != made_.end()) {
            add_missing_parties(call, it->second);
        }
    }
}

void provisioner::converge_soon() {
    if (converge_posted_ || leaving_) {
        return;
    }
    converge_posted_ = true;
    post_([this, alive = std::weak_ptr<const bool>(alive_)] {
        if (alive.expired()) {
            return; // the provisioner went before the loop ran this
        }
        converge_posted_ = false;
        converge();
    });
}

size_t provisioner::calls_waiting() const {
    return size_t(std::count_if(calls_.begin(), calls_.end(),
                                [this](const call_config& c) { return made_.count(c.name) == 0; }));
}

bool provisioner::is_leaving(const std::string& call, const std::string& party) const {
    return leaving_names_.count(call) != 0 || leaving_names_.count(leaving_name(call, party)) != 0;
}

bool provisioner::named(const std::string& name, const made_call& m) const {
    const call_config* c = find_call(name);
    return c != nullptr && c->connection == m.connection && c->key == m.key && c->encap == m.encap;
}

bool provisioner::named(const call_config& call, const std::string& party,
                        const made_party& p) const {
    const party_config* want = call.find_party(party);
    return want != nullptr && same_party(*want, p.spec);
}

// Every call and party made that the file does not name as it was made: its close or drop is
// asked for (again). Accepted (PENDING), it is no longer ours; refused, it stays leaving.
std::vector<std::pair<std::string, std::string>> provisioner::unnamed() const {
    std::vector<std::pair<std::string, std::string>> out; // call, party ("": the call)
    for (const auto& [name, m] : made_) {
        if (!named(name, m)) {
            out.emplace_back(name, "");
            continue;
        }
        const call_config& call = *find_call(name);
        for (const auto& [party, p] : m.parties) {
            if (!named(call, party, p)) {
                out.emplace_back(name, party);
            }
        }
    }
    return out;
}

std::string provisioner::leaving_name(const std::string& call, const std::string& party) {
    return party.empty() ? call : call + "/" + party;
}

void provisioner::retire_unnamed() {
    std::set<std::string> still;
    for (const auto& [call, party] : unnamed()) {
        const std::string what = leaving_name(call, party);
        const step_outcome o = party.empty() ? close_one(call) : drop_one(call, party);
        if (o.outcome != step_outcome::result::refused) {
            if (leaving_names_.count(what) != 0) {
                log::notice("{} '{}', which the file no longer names, has gone ({})",
                            party.empty() ? "call" : "party", what, o.status);
            }
            continue;
        }
        still.insert(what);
        if (leaving_names_.count(what) == 0) {
            log::warning("{} '{}' is no longer in the file but could not be removed: {} ({}); "
                         "it keeps receiving and is tried again every second",
                         party.empty() ? "call" : "party", what, o.status, o.detail);
        }
    }
    leaving_names_ = std::move(still);
}

const call_config* provisioner::find_call(const std::string& name) const {
    for (const auto& c : calls_) {
        if (c.name == name) {
            return &c;
        }
    }
    return nullptr;
}

provisioner::step_outcome provisioner::step_outcome::of(reload_step step, callmgmt::status s,
                                                        std::string detail) {
    const result r = s == cstatus::success   ? result::done
                     : s == cstatus::pending ? result::pending
                                             : result::refused;
    return {std::move(step), r, callmgmt::status_name(s), std::move(detail)};
}

provisioner::step_outcome provisioner::step_outcome::waiting(reload_step step, std::string what) {
    return {std::move(step), result::waiting, "WAITING", std::move(what)};
}

provisioner::step_outcome provisioner::step_outcome::refused(reload_step step, std::string status,
                                                             std::string why) {
    return {std::move(step), result::refused, std::move(status), std::move(why)};
}

template <typename F>
provisioner::step_outcome provisioner::request(binding& b, step_outcome o, F&& f) {
    const cstatus s = bindings_.request(b, std::forward<F>(f));
    return step_outcome::of(std::move(o.step), s,
                            s == cstatus::success || s == cstatus::pending
                                ? std::string()
                                : bindings_.last_error(b, s));
}

bool provisioner::usable(const std::string& connection) const {
    const connection_state* c = state_.find_connection(connection);
    return c != nullptr && c->link_up;
}

void provisioner::make_ready_calls() {
    for (const auto& call : calls_) {
        if (made_.count(call.name) != 0) {
            continue;
        }
        const step_outcome o = make_one(call);
        if (o.outcome == step_outcome::result::waiting) {
            if (reported_waiting_.insert(call.name).second) {
                log::notice("call '{}' {}", call.name, o.detail);
            }
        } else if (o.outcome != step_outcome::result::done) {
            log::error("{}: call '{}' could not be made: {} ({})", call.origin.where(), call.name,
                       o.status, o.detail);
        }
    }
}

provisioner::step_outcome provisioner::make_one(const call_config& call) {
    step_outcome o{{reload_op::make_call, call.name, "", ""}};
    binding* ingress = bindings_.find(call.connection);
    const party_config* first = nullptr;
    for (const auto& p : call.parties) {
        if (first == nullptr && usable(p.connection)) {
            first = &p;
        }
    }
    if (ingress == nullptr || !usable(call.connection) || first == nullptr) {
        return step_outcome::waiting(
            o.step,
            fmt::format("waits for connection '{}'",
                        first != nullptr ? call.connection : call.parties.front().connection));
    }
    callmgmt::call_spec spec{call.name, call.key, true, call.contract, call.encap};
    made_call m{call.connection, 0, call.key, call.encap, {}};
    callmgmt::party_handle ph = 0;
    o = request(*ingress, o, [&](callmgmt::provider_dispatch& d, void* pctx) {
        return d.make_call(pctx, 0, spec, *first, nullptr, nullptr, &m.vc, &ph);
    });
    if (o.outcome != step_outcome::result::done) {
        return o;
    }
    m.parties[first->name] = made_party{ph, *first};
    reported_waiting_.erase(call.name);
    add_missing_parties(call, m);
    made_[call.name] = std::move(m);
    return o;
}

provisioner::step_outcome provisioner::add_one(const call_config& call, made_call& m,
                                               const party_config& p) {
    step_outcome o{{reload_op::add_party, call.name, p.name, ""}};
    binding* ingress = bindings_.find(m.connection);
    if (ingress == nullptr) {
        return step_outcome::waiting(o.step,
                                     fmt::format("waits for connection '{}'", m.connection));
    }
    if (!usable(p.connection)) {
        return step_outcome::waiting(o.step,
                                     fmt::format("waits for connection '{}'", p.connection));
    }
    callmgmt::party_handle ph = 0;
    o = request(*ingress, o, [&](callmgmt::provider_dispatch& d, void* pctx) {
        return d.add_party(pctx, m.vc, p, nullptr, &ph);
    });
    if (o.outcome == step_outcome::result::done) {
        m.parties[p.name] = made_party{ph, p};
    }
    return o;
}

void provisioner::add_missing_parties(const call_config& call, made_call& m) {
    for (const auto& p : call.parties) {
        if (m.parties.count(p.name) != 0 || !usable(p.connection)) {
            continue;
        }
        const step_outcome o = add_one(call, m, p);
        if (!o.succeeded()) {
            log::error("{}: party '{}' of call '{}' could not be added: {} ({})", p.origin.where(),
                       p.name, call.name, o.status, o.detail);
        }
    }
}

provisioner::step_outcome provisioner::close_one(const std::string& name) {
    step_outcome o{{reload_op::close_call, name, "", ""}};
    auto mit = made_.find(name);
    if (mit == made_.end()) {
        o.detail = "it was not made (it waited for a connection)";
        reported_waiting_.erase(name);
        return o;
    }
    made_call& m = mit->second;
    binding* ingress = bindings_.find(m.connection);
    if (ingress == nullptr) {
        made_.erase(mit); // its call manager is going: the call closes with it
        return o;
    }
    // A call closes with its last party: drop the others first.
    while (m.parties.size() > 1) {
        const step_outcome d = drop_party_of(*ingress, name, m, std::prev(m.parties.end()));
        if (d.outcome != step_outcome::result::pending) {
            // The call and its parties live on, and stay ours.
            return step_outcome::refused(
                o.step, d.status,
                fmt::format("party '{}' could not be dropped first: {}", d.step.party, d.detail));
        }
    }
    const callmgmt::party_handle last = m.parties.empty() ? 0 : m.parties.begin()->second.handle;
    o = request(*ingress, o, [&](callmgmt::provider_dispatch& d, void* pctx) {
        return d.close_call(pctx, m.vc, last, {});
    });
    // Its handles die only when the close was accepted; a refused call lives on as ours.
    if (o.outcome == step_outcome::result::pending) {
        made_.erase(mit);
    }
    return o;
}

provisioner::step_outcome provisioner::drop_party_of(binding& b, const std::string& call,
                                                     made_call& m, party_map::iterator party) {
    step_outcome o{{reload_op::drop_party, call, party->first, ""}};
    const callmgmt::party_handle ph = party->second.handle;
    o = request(b, o, [&](callmgmt::provider_dispatch& d, void* pctx) {
        return d.drop_party(pctx, ph, {});
    });
    // The handle dies only when the drop was accepted (PENDING): a refused party lives on.
    if (o.outcome == step_outcome::result::pending) {
        m.parties.erase(party);
    }
    return o;
}

provisioner::step_outcome provisioner::drop_one(const std::string& call, const std::string& party) {
    step_outcome o{{reload_op::drop_party, call, party, ""}};
    auto mit = made_.find(call);
    if (mit == made_.end() || mit->second.parties.count(party) == 0) {
        o.detail = "it was not added (it waited for a connection)";
        return o;
    }
    made_call& m = mit->second;
    binding* ingress = bindings_.find(m.connection);
    if (ingress == nullptr) {
        m.parties.erase(party);
        return o; // its call manager is going: the party goes with it
    }
    if (m.parties.size() == 1) {
        // The call's last live party (the others the file names wait for their connections):
        // a call cannot lose its last party, so it closes, and is made again when a party the
        // file names can join it.
        step_outcome c = close_one(call);
        c.step = o.step;
        if (c.outcome == step_outcome::result::pending) {
            c.detail = "its call's last live party: the call is closed, and made again when "
                       "another of its parties can join";
        }
        return c;
    }
    return drop_party_of(*ingress, call, m, m.parties.find(party));
}

provisioner::step_outcome provisioner::modify_one(const call_config& call) {
    step_outcome o{{reload_op::modify_qos, call.name, "", ""}};
    auto mit = made_.find(call.name);
    binding* ingress = mit != made_.end() ? bindings_.find(mit->second.connection) : nullptr;
    if (ingress == nullptr) {
        o.detail = "it is not made: it will be made with the new contract";
        return o;
    }
    return request(*ingress, o, [&](callmgmt::provider_dispatch& d, void* pctx) {
        return d.modify_call_qos(pctx, mit->second.vc, call.contract);
    });
}

std::vector<provisioner::step_outcome> provisioner::apply(const reload_plan& plan,
                                                          std::vector<call_config> next) {
    calls_ = std::move(next);
    std::vector<step_outcome> out;
    for (const auto& step : plan.steps) {
        if (!is_call_op(step.op)) {
            continue; // not a call: the namespace's (control_plane::reload)
        }
        step_outcome o;
        const call_config* call = find_call(step.call);
        switch (step.op) {
        case reload_op::close_call: o = close_one(step.call); break;
        case reload_op::drop_party: o = drop_one(step.call, step.party); break;
        case reload_op::modify_qos:
            o = call != nullptr ? modify_one(*call)
                                : step_outcome::refused(step, "FAILURE", "no such call");
            break;
        case reload_op::add_party: {
            auto mit = made_.find(step.call);
            const party_config* p = call != nullptr ? call->find_party(step.party) : nullptr;
            if (p == nullptr) {
                o = step_outcome::refused(step, "FAILURE", "no such party in the file");
            } else if (mit == made_.end()) {
                // Not made (it waits, or an earlier step closed it with its last live
                // party): made now with every party that can join, if it can be.
                o = make_one(*call);
                if (o.outcome == step_outcome::result::done) {
                    o.detail = "made again with its call";
                }
            } else if (auto made = mit->second.parties.find(p->name);
                       made != mit->second.parties.end()) {
                o = named(*call, p->name, made->second)
                        ? step_outcome::of(step, cstatus::success, "added with its call")
                        : step_outcome::waiting(step, "waits for the party it replaces to leave");
            } else {
                o = add_one(*call, mit->second, *p);
            }
            break;
        }
        case reload_op::make_call:
            o = call != nullptr ? make_one(*call)
                                : step_outcome::refused(step, "FAILURE", "no such call");
            break;
        case reload_op::delete_service:
        case reload_op::set_service: break;
        }
        o.step = step;
        out.push_back(std::move(o));
    }
    // What a refused step left behind is leaving: tried again at the next converge().
    leaving_names_.clear();
    for (const auto& [call, party] : unnamed()) {
        leaving_names_.insert(leaving_name(call, party));
    }
    return out;
}

void provisioner::drop_party_complete(void* cb, cstatus, callmgmt::party_handle, void*) {
    bindings_.completed(cb);
}

void provisioner::close_call_complete(void* cb, cstatus, callmgmt::vc_handle,
                                      callmgmt::party_handle, void*) {
    bindings_.completed(cb);
}

void provisioner::incoming_close_call(void*, cstatus reason, callmgmt::vc_handle vc, void*) {
    for (auto it = made_.begin(); it != made_.end(); ++it) {
        if (it->second.vc == vc) {
            if (!leaving_) {
                log::notice("call '{}' was closed by its call manager ({}); it is made again "
                            "when its connections are back",
                            it->first, callmgmt::status_name(reason));
            }
            made_.erase(it);
            converge_soon(); // its connections may be back already
            return;
        }
    }
}

void provisioner::incoming_drop_party(void*, cstatus, callmgmt::party_handle party, void*) {
    for (auto& [name, m] : made_) {
        for (auto it = m.parties.begin(); it != m.parties.end(); ++it) {
            if (it->second.handle == party) {
                log::notice("call '{}': party '{}' was dropped by its call manager; it is added "
                            "again when its connection is back",
                            name, it->first);
                m.parties.erase(it);
                converge_soon(); // its connection may be back already
                return;
            }
        }
    }
}

} // namespace vcplane
