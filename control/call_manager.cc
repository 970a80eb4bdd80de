#include "control/call_manager.hh"

#include "base/contract_stats.hh"

#include <algorithm>
#include <fmt/format.h>

#include "base/log.hh"
#include "dataplane/wire.hh"
#include "vocab/names.hh"

namespace vcplane {

using callmgmt::party_handle;
using callmgmt::vc_handle;
using cstatus = callmgmt::status;
using phase = vc_phase;

call_manager::call_manager(std::string connection, switch_state& state, grace_period_source& gp,
                           nmr::registrar& reg, close_data_sender send_close_data)
    : connection_(std::move(connection))
    , state_(state)
    , gp_(gp)
    , reg_(reg)
    , send_close_data_(std::move(send_close_data))
    , module_{"call-manager/" + connection_} {}

call_manager::~call_manager() = default;

nmr::status call_manager::register_provider() {
    nmr::registration_instance inst;
    inst.npi = &callmgmt::npi;
    inst.module = &module_;
    inst.npi_specific = &connection_; // clients choose call managers by connection name
    return reg_.register_provider(*this, inst, this, &registration_);
}

void call_manager::deregister(std::function<void()> done) {
    reg_.deregister_provider(registration_);
    reg_.on_deregister_complete(registration_, std::move(done));
}

void call_manager::list_series(traffic_series_list& out) const {
    for (const auto& [id, r] : vcs_) {
        if (r.state != phase::active) {
            continue;
        }
        if (r.stats_slot != counter_slots::remainder) {
            out.vcs.push_back({connection_, r.call.name, r.call.key, "", "", r.stats_slot});
        }
        for (const auto& p : r.parties) {
            if (p.stats_slot != counter_slots::remainder) {
                out.parties.push_back({connection_, r.call.name, p.spec.key, p.spec.name,
                                       p.spec.connection, p.stats_slot,
                                       party_action_name(p.action)});
            }
        }
    }
}

size_t call_manager::active_calls() const {
    return size_t(std::count_if(vcs_.begin(), vcs_.end(),
                                [](const auto& e) { return e.second.state == phase::active; }));
}

std::vector<call_manager::call_info> call_manager::calls() const {
    std::vector<call_info> out;
    for (const auto& [id, r] : vcs_) {
        if (r.state != phase::active) {
            continue;
        }
        call_info c{
            id, r.call.name,  r.call.key, r.owner->client_name, r.call.multipoint, r.call.flow,
            {}, r.call.encap, {}};
        for (const auto& p : r.parties) {
            c.parties.emplace_back(r.call.multipoint ? p.id : 0, p.spec);
            c.actions.push_back(p.action);
        }
        out.push_back(std::move(c));
    }
    return out;
}

size_t call_manager::active_parties() const {
    size_t n = 0;
    for (const auto& [id, r] : vcs_) {
        n += r.state == phase::active ? r.parties.size() : 0;
    }
    return n;
}

nmr::status call_manager::attach_client(nmr::handle h, void*, const nmr::registration_instance& c,
                                        void* client_binding, const void* client_dispatch,
                                        void** provider_binding, const void** provider_dispatch) {
    if (client_dispatch == nullptr) {
        return nmr::status::invalid_parameter;
    }
    auto* b =
        new binding{h,
                    client_binding,
                    static_cast<callmgmt::client_dispatch*>(const_cast<void*>(client_dispatch)),
                    c.module->name,
                    "",
                    0,
                    false};
    *provider_binding = b;
    *provider_dispatch = static_cast<callmgmt::provider_dispatch*>(this);
    return nmr::status::success;
}

void call_manager::begin_op(binding& b) {
    ++b.pending;
}

void call_manager::end_op(binding& b) {
    if (--b.pending == 0 && b.detaching) {
        reg_.provider_detach_client_complete(b.handle);
    }
}

nmr::status call_manager::detach_client(void* pb) {
    auto& b = *static_cast<binding*>(pb);
    b.detaching = true;
    for (auto& [id, r] : vcs_) {
        if (r.owner == &b && r.state == phase::active) {
            retire(r, 0, {}, true);
        }
    }
    return b.pending == 0 ? nmr::status::success : nmr::status::pending;
}

void call_manager::cleanup_binding_context(void* pb) {
    auto* b = static_cast<binding*>(pb);
    // Everything the client still had here is deactivated by now: its VCs go with it.
    std::erase_if(vcs_, [b](const auto& e) { return e.second.owner == b; });
    delete b;
}

cstatus call_manager::fail(binding& b, cstatus s, std::string why) {
    b.last_error = std::move(why);
    log::info("call manager '{}': {} refused: {}", connection_, callmgmt::status_name(s),
              b.last_error);
    return s;
}

std::string call_manager::last_error(void* pb) const {
    return static_cast<binding*>(pb)->last_error;
}

call_manager::vc_record* call_manager::owned_vc(binding& b, vc_handle id) {
    auto it = vcs_.find(id);
    return it != vcs_.end() && it->second.owner == &b ? &it->second : nullptr;
}

cstatus call_manager::create_vc_impl(void* pb, void* client_vc_ctx, vc_handle* out) {
    auto& b = *static_cast<binding*>(pb);
    if (out == nullptr) {
        return fail(b, cstatus::invalid_parameter, "no place for the VC handle");
    }
    const vc_handle id = state_.next_handle();
    vcs_.emplace(id, vc_record{id, &b, false, client_vc_ctx, phase::created, {}, {}, nullptr});
    *out = id;
    return cstatus::success;
}

cstatus call_manager::delete_vc_impl(void* pb, vc_handle id) {
    auto& b = *static_cast<binding*>(pb);
    vc_record* r = owned_vc(b, id);
    if (r == nullptr) {
        return fail(b, cstatus::invalid_handle, fmt::format("no VC {} of this client here", id));
    }
    if (r->cm_created) {
        return fail(b, cstatus::failure, "the call manager created this VC and deletes it");
    }
    if (r->state == phase::active) {
        return fail(b, cstatus::not_accepted, "the VC still carries a call: close it first");
    }
    if (r->state == phase::closing) {
        return fail(b, cstatus::closing, "the VC's close is still pending");
    }
    vcs_.erase(id);
    return cstatus::success;
}

cstatus call_manager::make_call_impl(void* pb, vc_handle vh, const callmgmt::call_spec& call,
                                     const party_spec& first, void* client_vc_ctx,
                                     void* client_party_ctx, vc_handle* out_vc,
                                     party_handle* out_party) {
    auto& b = *static_cast<binding*>(pb);
    const connection_state* in = state_.find_connection(connection_);
    if (in == nullptr || out_vc == nullptr || out_party == nullptr) {
        return fail(b, cstatus::failure, "the connection is going away");
    }
    callmgmt::call_spec accepted = call;
    if (auto e = accept_call(b, *in, vh, accepted)) {
        return fail(b, e->status, e->why);
    }
    const connection_state* out = state_.find_connection(first.connection);
    checked_party checked;
    if (auto e = accept_party(*in, out, first, accepted.encap, checked)) {
        return fail(b, e->status, e->why);
    }
    const uint64_t bps = booked_bps(accepted.flow);
    if (!state_.book(first.connection, bps)) {
        return fail(b, cstatus::resources,
                    fmt::format("'{}' would be overbooked: {} of {} bit/s booked, {} more asked",
                                first.connection, state_.booked(first.connection),
                                out->bandwidth_bps, bps));
    }
    table_error error;
    const uint32_t vc_slot = state_.vc_slots().acquire();
    const uint32_t party_slot = state_.party_slots().acquire();
    party_set* set = state_.build_parties({&checked, 1}, {&party_slot, 1}, &error, accepted.encap);
    vc* circuit = set != nullptr ? state_.new_vc(*in, call.key, vc_slot, set, accepted.flow, &error)
                                 : nullptr;
    if (circuit == nullptr || !state_.publish_vc(*in, circuit)) {
        if (circuit != nullptr) {
            // The key is in range (accept_call): only the key table's leaf can have failed.
            error = {cstatus::resources, "out of memory for the key table"};
            switch_state::free_vc(circuit);
        } else {
            party_set::destroy(set);
        }
        // Never published: no worker counted into them, no snapshot lists them.
        state_.vc_slots().release(vc_slot);
        state_.party_slots().release(party_slot);
        state_.release(first.connection, bps);
        return fail(b, error.status, error.why);
    }
    if (vh == 0) {
        vh = state_.next_handle();
        vcs_.emplace(vh, vc_record{vh, &b, true, client_vc_ctx, phase::created, {}, {}, nullptr});
    }
    vc_record& r = vcs_.at(vh);
    const party_handle ph = state_.next_handle();
    r.state = phase::active;
    r.call = accepted;
    r.parties.clear();
    r.parties.push_back(party_record{checked, ph, client_party_ctx, party_slot});
    r.circuit = circuit;
    r.stats_slot = vc_slot;
    party_index_[ph] = vh;
    *out_vc = vh;
    *out_party = call.multipoint ? ph : 0;
    if (in->media == media_kind::port) {
        log::info("call '{}' on port connection '{}' made by {}", call.name, connection_,
                  b.client_name);
    } else {
        log::info("call '{}' on '{}' ({} {}) made by {}", call.name, connection_,
                  key_name(in->media), call.key, b.client_name);
    }
    return cstatus::success;
}

std::optional<table_error> call_manager::accept_call(binding& b, const connection_state& in,
                                                     vc_handle vh, callmgmt::call_spec& call) {
    if (vh != 0) {
        const vc_record* r = owned_vc(b, vh);
        if (r == nullptr) {
            return table_error{cstatus::invalid_handle,
                               fmt::format("no VC {} of this client here", vh)};
        }
        if (r->state == phase::closing) {
            return table_error{cstatus::closing, "the VC's previous call is still closing"};
        }
        if (r->state == phase::active) {
            return table_error{cstatus::failure, "the VC carries a call already"};
        }
    }
    if (!valid_name(call.name)) {
        return table_error{cstatus::invalid_parameter,
                           fmt::format("'{}': a call name is {}", call.name, name_rule)};
    }
    if (!in.link_up) {
        // Its calls were closed when the link went down; a new one would carry nothing and
        // would not be closed again when it does.
        return table_error{cstatus::failure, fmt::format("'{}' has no link", connection_)};
    }
    const key_range range = key_range_for(in.media);
    if (in.media == media_kind::port && call.key != port_key) {
        return table_error{cstatus::invalid_parameter,
                           fmt::format("'{}' is a port connection: its one call takes no key "
                                       "(got {})",
                                       connection_, call.key)};
    }
    if (call.key < range.min || call.key > range.max) {
        return table_error{cstatus::invalid_parameter,
                           fmt::format("{} {}{} is out of range ({}..{})", key_name(in.media),
                                       call.key, call.key == 0 ? " (or none given)" : "", range.min,
                                       range.max)};
    }
    if (state_.key_in_use(in, call.key)) {
        if (in.media == media_kind::port) {
            return table_error{
                cstatus::failure,
                fmt::format("port connection '{}' carries a call already", connection_)};
        }
        return table_error{
            cstatus::failure,
            fmt::format("{} {} on '{}' is in use", key_name(in.media), call.key, connection_)};
    }
    if (const action_problem p = check_encapsulation(call.encap); p != action_problem::none) {
        return table_error{cstatus::invalid_parameter, action_problem_text(p)};
    }
    return accept_flow(in, call.flow);
}

std::optional<table_error> call_manager::accept_party(const connection_state& in,
                                                      const connection_state* out,
                                                      const party_spec& p,
                                                      const call_encapsulation& encap,
                                                      checked_party& into) const {
    if (!valid_name(p.name)) {
        return table_error{cstatus::invalid_parameter,
                           fmt::format("'{}': a party name is {}", p.name, name_rule)};
    }
    if (auto e = state_.check_party(in, out, p, encap, into)) {
        return e;
    }
    if (!out->link_up) {
        // Parties leaving through it were dropped when its link went down; a new one would get
        // nothing and would not be dropped again.
        return table_error{cstatus::failure,
                           fmt::format("party '{}': '{}' has no link", p.name, p.connection)};
    }
    return std::nullopt;
}

std::optional<table_error> call_manager::accept_flow(const connection_state& in,
                                                     traffic_contract& flow) const {
    switch (check_contract(flow)) {
    case contract_problem::none: break;
    case contract_problem::needs_sustained_rate:
        return table_error{cstatus::invalid_parameter,
                           "a peak rate or burst needs a sustained rate"};
    case contract_problem::peak_below_sustained:
        return table_error{cstatus::invalid_parameter,
                           fmt::format("peak rate {} is below the sustained rate {} (bytes/s)",
                                       flow.peak_rate, flow.sustained_rate)};
    }
    if (flow.sustained_rate != 0 && flow.burst == 0) {
        flow.burst = default_burst(flow.sustained_rate, in.mtu);
    }
    return std::nullopt;
}

cstatus call_manager::modify_call_qos_impl(void* pb, vc_handle vh, const traffic_contract& flow) {
    auto& b = *static_cast<binding*>(pb);
    vc_record* r = owned_vc(b, vh);
    if (r == nullptr) {
        return fail(b, cstatus::invalid_handle, fmt::format("no VC {} of this client here", vh));
    }
    if (r->state != phase::active) {
        return fail(b, r->state == phase::closing ? cstatus::closing : cstatus::failure,
                    "the VC carries no call");
    }
    const connection_state* in = state_.find_connection(connection_);
    if (in == nullptr) {
        return fail(b, cstatus::failure, "the connection is going away");
    }
    traffic_contract accepted = flow;
    if (auto e = accept_flow(*in, accepted)) {
        return fail(b, e->status, e->why);
    }
    // Admission first, as for make_call and add_party.
    const uint64_t old_bps = booking(*r), new_bps = booked_bps(accepted);
    if (auto full = rebook(*r, old_bps, new_bps)) {
        return fail(b, cstatus::resources,
                    fmt::format("'{}' would be overbooked at {} bit/s", *full, new_bps));
    }
    // The meter lives in the vc, which is immutable once published: publish a new vc (same
    // key, same counter slot, a copy of the party array) in its place, retire the old one.
    table_error error;
    party_set* set = state_.build_parties(parties_of(*r), slots_of(*r), &error, r->call.encap);
    vc* next = set != nullptr
                   ? state_.new_vc(*in, r->call.key, r->stats_slot, set, accepted, &error)
                   : nullptr;
    if (next == nullptr) {
        party_set::destroy(set);
        rebook(*r, new_bps, old_bps); // cannot fail: it gives back what it just took
        return fail(b, error.status, error.why);
    }
    vc* old = r->circuit;
    state_.publish_vc(*in, next); // the key's leaf exists already: cannot fail
    r->circuit = next;
    r->call.flow = accepted;
    gp_.defer([old] { switch_state::free_vc(old); });
    log::info("call '{}' on '{}': traffic contract now sustained {} peak {} burst {} (bytes/s)",
              r->call.name, connection_, accepted.sustained_rate, accepted.peak_rate,
              accepted.burst);
    return cstatus::success;
}

cstatus call_manager::add_party_impl(void* pb, vc_handle vh, const party_spec& party,
                                     void* client_party_ctx, party_handle* out) {
    auto& b = *static_cast<binding*>(pb);
    vc_record* r = owned_vc(b, vh);
    if (r == nullptr || out == nullptr) {
        return fail(b, cstatus::invalid_handle, fmt::format("no VC {} of this client here", vh));
    }
    if (r->state != phase::active) {
        return fail(b, r->state == phase::closing ? cstatus::closing : cstatus::failure,
                    "the VC carries no call");
    }
    if (!r->call.multipoint) {
        return fail(b, cstatus::failure, "a point-to-point call has no parties to add");
    }
    const connection_state* in = state_.find_connection(connection_);
    const connection_state* egress = state_.find_connection(party.connection);
    checked_party checked;
    if (auto e = accept_party(*in, egress, party, r->call.encap, checked)) {
        return fail(b, e->status, e->why);
    }
    if (r->parties.has_name(party.name)) {
        return fail(b, cstatus::invalid_parameter,
                    fmt::format("call '{}' has a party '{}' already", r->call.name, party.name));
    }
    if (!state_.book(party.connection, booking(*r))) {
        return fail(b, cstatus::resources,
                    fmt::format("'{}' would be overbooked", party.connection));
    }
    const uint32_t party_slot = state_.party_slots().acquire();
    table_error error;
    // The published array with one party more (appended, as the record below).
    party_set* next = state_.parties_with(*r->circuit->parties, *egress, checked, party_slot,
                                          &error, r->call.encap);
    if (next == nullptr) {
        state_.party_slots().release(party_slot); // never published
        state_.release(party.connection, booking(*r));
        return fail(b, error.status, error.why);
    }
    replace_parties(*r, next);
    const party_handle ph = state_.next_handle();
    r->parties.push_back(party_record{checked, ph, client_party_ctx, party_slot});
    party_index_[ph] = vh;
    *out = ph;
    return cstatus::success;
}

std::vector<checked_party> call_manager::parties_of(const vc_record& r) {
    std::vector<checked_party> parties;
    parties.reserve(r.parties.size());
    for (const auto& p : r.parties) {
        parties.push_back(p);
    }
    return parties;
}

std::vector<uint32_t> call_manager::slots_of(const vc_record& r) {
    std::vector<uint32_t> slots;
    for (const auto& p : r.parties) {
        slots.push_back(p.stats_slot);
    }
    return slots;
}

std::optional<std::string> call_manager::rebook(const vc_record& r, uint64_t from_bps,
                                                uint64_t to_bps) {
    for (const auto& p : r.parties) {
        state_.release(p.spec.connection, from_bps);
    }
    for (size_t i = 0; i < r.parties.size(); ++i) {
        if (!state_.book(r.parties[i].spec.connection, to_bps)) {
            for (size_t j = 0; j < i; ++j) {
                state_.release(r.parties[j].spec.connection, to_bps);
            }
            for (const auto& p : r.parties) {
                state_.book(p.spec.connection, from_bps); // what was released, back
            }
            return r.parties[i].spec.connection;
        }
    }
    return std::nullopt;
}

void call_manager::release_bookings(const vc_record& r) {
    for (const auto& p : r.parties) {
        state_.release(p.spec.connection, booking(r));
    }
}

// Every request's outcome is counted (vcplane_contract_operations_total).
cstatus call_manager::create_vc(void* pb, void* ctx, vc_handle* out) {
    return counted("create_vc", create_vc_impl(pb, ctx, out));
}
cstatus call_manager::delete_vc(void* pb, vc_handle vc) {
    return counted("delete_vc", delete_vc_impl(pb, vc));
}
cstatus call_manager::make_call(void* pb, vc_handle vc, const callmgmt::call_spec& call,
                                const party_spec& first, void* vc_ctx, void* party_ctx,
                                vc_handle* out_vc, party_handle* out_party) {
    return counted("make_call",
                   make_call_impl(pb, vc, call, first, vc_ctx, party_ctx, out_vc, out_party));
}
cstatus call_manager::add_party(void* pb, vc_handle vc, const party_spec& party, void* ctx,
                                party_handle* out) {
    return counted("add_party", add_party_impl(pb, vc, party, ctx, out));
}
cstatus call_manager::drop_party(void* pb, party_handle party, std::span<const uint8_t> data) {
    return counted("drop_party", drop_party_impl(pb, party, data));
}
cstatus call_manager::close_call(void* pb, vc_handle vc, party_handle last,
                                 std::span<const uint8_t> data) {
    return counted("close_call", close_call_impl(pb, vc, last, data));
}
cstatus call_manager::modify_call_qos(void* pb, vc_handle vc, const traffic_contract& flow) {
    return counted("modify_call_qos", modify_call_qos_impl(pb, vc, flow));
}

cstatus call_manager::counted(const char* op, cstatus s) {
    contract_stats::process().count("ndis", op, callmgmt::status_name(s));
    return s;
}

void call_manager::completed(const char* completion, cstatus s) {
    contract_stats::process().count("ndis", completion, callmgmt::status_name(s));
}

size_t call_manager::party_records::index_of(party_handle id) const {
    if (indexed()) {
        return size_t(std::find(ids_.begin(), ids_.end(), id) - ids_.begin());
    }
    return size_t(std::find_if(records_.begin(), records_.end(),
                               [id](const auto& r) { return r->id == id; }) -
                  records_.begin());
}

bool call_manager::party_records::has_name(const std::string& name) const {
    if (indexed()) {
        return names_.count(name) != 0;
    }
    return std::any_of(records_.begin(), records_.end(),
                       [&name](const auto& r) { return r->spec.name == name; });
}

// Strong guarantee: when an allocation fails, nothing has changed (every step that can throw
// comes before the first that changes a member).
void call_manager::party_records::push_back(party_record p) {
    auto record = std::make_unique<party_record>(std::move(p));
    records_.reserve(records_.size() + 1);
    if (indexed()) {
        ids_.reserve(ids_.size() + 1);
        names_.insert(record->spec.name);
        ids_.push_back(record->id);
    } else if (records_.size() + 1 > indexed_from) {
        std::vector<callmgmt::party_handle> ids;
        std::unordered_multiset<std::string> names;
        ids.reserve(records_.size() + 1);
        for (const auto& r : records_) {
            ids.push_back(r->id);
            names.insert(r->spec.name);
        }
        ids.push_back(record->id);
        names.insert(record->spec.name);
        ids_ = std::move(ids);
        names_ = std::move(names);
    }
    records_.push_back(std::move(record));
}

call_manager::party_record call_manager::party_records::erase(size_t at) {
    if (indexed()) {
        names_.erase(names_.find(records_[at]->spec.name));
        ids_.erase(ids_.begin() + long(at));
    }
    party_record taken = std::move(*records_[at]);
    records_.erase(records_.begin() + long(at));
    return taken;
}

void call_manager::party_records::clear() {
    names_.clear();
    ids_.clear();
    records_.clear();
}

} // namespace vcplane
