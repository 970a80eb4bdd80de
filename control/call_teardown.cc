#include "control/call_manager.hh"

// The call manager's teardown half: dropping parties (with their close data), closing calls,
// and what a connection going down or away takes with it (docs/contracts.md §4.3-§4.5). The
// rules are the header's; this file only keeps call_manager.cc to the making half.

#include <algorithm>
#include <fmt/format.h>

#include "base/contract_stats.hh"
#include "base/log.hh"
#include "dataplane/wire.hh"

namespace vcplane {

using callmgmt::party_handle;
using callmgmt::vc_handle;
using cstatus = callmgmt::status;
using phase = vc_phase;

cstatus call_manager::check_close_data(binding& b, const party_record& p,
                                       std::span<const uint8_t> data) {
    if (data.empty()) {
        return cstatus::success;
    }
    const connection_state* out = state_.find_connection(p.spec.connection);
    if (out == nullptr || out->media != media_kind::mpls || p.spec.key == implicit_null_label) {
        // Only a label has an associated channel to carry data with the termination.
        return fail(b, cstatus::invalid_data,
                    fmt::format("party '{}' leaves through {}, which cannot carry close data",
                                p.spec.name,
                                out == nullptr ? "no connection"
                                : out->media != media_kind::mpls
                                    ? fmt::format("a {} connection", media_name(out->media))
                                    : "label 3 (popped)"));
    }
    if (data.size() + wire::gach_overhead > out->mtu) {
        return fail(b, cstatus::invalid_parameter,
                    fmt::format("{} bytes of close data do not fit the MTU {} of '{}' (at most {})",
                                data.size(), out->mtu, out->name, out->mtu - wire::gach_overhead));
    }
    return cstatus::success;
}

bool call_manager::republish_without(binding& b, vc_record& r, std::span<const size_t> leaving) {
    if (leaving.size() == 1) {
        // One party: the published array without it (its order is the records').
        table_error error;
        party_set* next =
            state_.parties_without(*r.circuit->parties, uint32_t(leaving.front()), &error);
        if (next == nullptr) {
            b.last_error = error.why;
            return false;
        }
        replace_parties(r, next);
        return true;
    }
    std::vector<checked_party> staying;
    std::vector<uint32_t> slots;
    for (size_t i = 0; i < r.parties.size(); ++i) {
        if (std::find(leaving.begin(), leaving.end(), i) == leaving.end()) {
            staying.push_back(r.parties[i]);
            slots.push_back(r.parties[i].stats_slot);
        }
    }
    table_error error;
    party_set* next = state_.build_parties(staying, slots, &error, r.call.encap);
    if (next == nullptr) {
        b.last_error = error.why;
        return false;
    }
    replace_parties(r, next);
    return true;
}

void call_manager::replace_parties(vc_record& r, party_set* next) {
    party_set* old = r.circuit->parties;
    rcu_assign_pointer(r.circuit->parties, next);
    // Decided now, while the vc is certainly alive: by the time the grace period ends, a
    // close may have freed the vc, and with it an embedded array.
    if (!old->embedded()) {
        gp_.defer([old] { party_set::destroy(old); });
    }
}

cstatus call_manager::drop_party_impl(void* pb, party_handle ph,
                                      std::span<const uint8_t> close_data) {
    auto& b = *static_cast<binding*>(pb);
    auto idx = party_index_.find(ph);
    vc_record* r = idx != party_index_.end() ? owned_vc(b, idx->second) : nullptr;
    if (r == nullptr || r->state != phase::active || !r->call.multipoint) {
        return fail(b, cstatus::invalid_handle, fmt::format("no party {} of this client here", ph));
    }
    if (r->parties.size() == 1) {
        return fail(
            b, cstatus::failure,
            fmt::format("party is the last of call '{}': close the call instead", r->call.name));
    }
    const size_t at = r->parties.index_of(ph);
    if (cstatus s = check_close_data(b, r->parties[at], close_data); s != cstatus::success) {
        return s;
    }
    if (!republish_without(b, *r, std::span(&at, 1))) {
        return fail(b, cstatus::resources, b.last_error);
    }
    // The handle is dead from here on; the party's state lives until the grace period ends.
    party_record leaving = r->parties.erase(at);
    party_index_.erase(ph);
    state_.release(leaving.spec.connection, booking(*r));
    begin_op(b);
    const uint32_t slot = park_leaving(leaving_party{
        &b, std::move(leaving), std::vector<uint8_t>(close_data.begin(), close_data.end())});
    gp_.defer([this, slot] { complete_drop(slot); });
    return cstatus::pending;
}

uint32_t call_manager::park_leaving(leaving_party p) {
    if (free_leaving_.empty()) {
        leaving_.push_back(std::move(p));
        return uint32_t(leaving_.size() - 1);
    }
    const uint32_t slot = free_leaving_.back();
    free_leaving_.pop_back();
    leaving_[slot] = std::move(p);
    return slot;
}

cstatus call_manager::send_close(const party_spec& p, uint32_t party_slot,
                                 std::span<const uint8_t> data) {
    if (data.empty() || !send_close_data_) {
        return cstatus::success;
    }
    const connection_state* out = state_.find_connection(p.connection);
    if (out == nullptr || !send_close_data_(*out, p, party_slot, data)) {
        log::warning("party '{}': its close data could not be sent (no buffer, the worker's "
                     "control ring full, or its connection gone)",
                     p.name);
        return cstatus::resources;
    }
    return cstatus::success;
}

void call_manager::complete_drop(uint32_t slot) {
    // Taken out first: the client's completion may drop another party, which may reuse the
    // slot or grow leaving_.
    const leaving_party p = std::move(leaving_[slot]);
    free_leaving_.push_back(slot);
    binding& b = *p.owner;
    // The party sees no more data copies now: the close data is the last frame it gets.
    const cstatus s = send_close(p.record.spec, p.record.stats_slot, p.close_data);
    state_.retire_party_slot(p.record.stats_slot); // no worker counts into it any more
    completed("drop_party_complete", s);
    b.client->drop_party_complete(b.client_binding, s, p.record.id, p.record.client_ctx);
    end_op(b);
}

cstatus call_manager::close_call_impl(void* pb, vc_handle vh, party_handle last,
                                      std::span<const uint8_t> close_data) {
    auto& b = *static_cast<binding*>(pb);
    vc_record* r = owned_vc(b, vh);
    if (r == nullptr) {
        return fail(b, cstatus::invalid_handle, fmt::format("no VC {} of this client here", vh));
    }
    if (r->state == phase::closing) {
        return fail(b, cstatus::closing, "the call is closing already");
    }
    if (r->state != phase::active) {
        return fail(b, cstatus::failure, "the VC carries no call");
    }
    if (r->call.multipoint && r->parties.size() > 1) {
        return fail(b, cstatus::failure,
                    fmt::format("call '{}' has {} parties: drop all but the last first",
                                r->call.name, r->parties.size()));
    }
    if (last != (r->call.multipoint ? r->parties[0].id : 0)) {
        return fail(b, cstatus::invalid_handle,
                    r->call.multipoint ? "the party handle is not the call's last party"
                                       : "a point-to-point call takes no party handle");
    }
    if (cstatus s = check_close_data(b, r->parties[0], close_data); s != cstatus::success) {
        return s;
    }
    retire(*r, last, std::vector<uint8_t>(close_data.begin(), close_data.end()), false);
    return cstatus::pending;
}

void call_manager::retire(vc_record& r, party_handle last, std::vector<uint8_t> close_data,
                          bool incoming) {
    binding& b = *r.owner;
    const connection_state* in = state_.find_connection(connection_);
    if (in != nullptr) {
        state_.unpublish_vc(*in, r.call.key);
    }
    release_bookings(r);
    for (const auto& p : r.parties) {
        party_index_.erase(p.id);
    }
    r.state = phase::closing;
    vc* circuit = r.circuit;
    r.circuit = nullptr;
    const party_spec last_party = r.parties.empty() ? party_spec{} : r.parties.front().spec;
    const uint32_t last_slot =
        r.parties.empty() ? counter_slots::remainder : r.parties.front().stats_slot;
    const vc_handle vh = r.id;
    begin_op(b);
    gp_.defer([this, &b, vh, last, last_party, last_slot, circuit, data = std::move(close_data),
               incoming] {
        switch_state::free_vc(circuit);
        const cstatus sent = send_close(last_party, last_slot, data);
        vc_record& rec = vcs_.at(vh);
        state_.retire_vc_slot(rec.stats_slot);
        for (const auto& p : rec.parties) {
            state_.retire_party_slot(p.stats_slot);
        }
        rec.state = phase::created; // deactivated: reusable, or deleted by its creator
        rec.stats_slot = counter_slots::remainder;
        rec.parties.clear();
        void* ctx = rec.client_ctx;
        const bool cm_created = rec.cm_created;
        if (incoming) {
            completed("incoming_close_call", cstatus::closing);
            b.client->incoming_close_call(b.client_binding, cstatus::closing, vh, ctx);
        } else {
            completed("close_call_complete", sent);
            b.client->close_call_complete(b.client_binding, sent, vh, last, ctx);
        }
        if (cm_created) {
            vcs_.erase(vh); // ours to delete, now that the client has its completion
        }
        end_op(b);
    });
}

void call_manager::egress_gone(const std::string& gone) {
    for (auto& [vh, r] : vcs_) {
        if (r.state != phase::active) {
            continue;
        }
        std::vector<size_t> leaving;
        for (size_t i = 0; i < r.parties.size(); ++i) {
            if (r.parties[i].spec.connection == gone) {
                leaving.push_back(i);
            }
        }
        if (leaving.empty()) {
            continue;
        }
        binding& b = *r.owner;
        if (leaving.size() == r.parties.size()) {
            // The last party cannot be dropped: the call closes instead.
            log::notice("call '{}': every party left through '{}'; closing it", r.call.name, gone);
            retire(r, 0, {}, true);
            continue;
        }
        if (!republish_without(b, r, leaving)) {
            log::error("call '{}': cannot drop the parties leaving through '{}' ({}); closing it",
                       r.call.name, gone, b.last_error);
            retire(r, 0, {}, true);
            continue;
        }
        std::vector<party_record> dropped;
        for (auto it = leaving.rbegin(); it != leaving.rend(); ++it) {
            dropped.push_back(r.parties[*it]);
            state_.release(r.parties[*it].spec.connection, booking(r));
            party_index_.erase(r.parties[*it].id);
            r.parties.erase(*it);
        }
        log::notice("call '{}': dropped {} part{} leaving through '{}'", r.call.name,
                    dropped.size(), dropped.size() == 1 ? "y" : "ies", gone);
        begin_op(b);
        gp_.defer([this, &b, dropped] {
            for (const auto& p : dropped) {
                state_.retire_party_slot(p.stats_slot);
            }
            for (auto it = dropped.rbegin(); it != dropped.rend(); ++it) {
                completed("incoming_drop_party", cstatus::closing);
                b.client->incoming_drop_party(b.client_binding, cstatus::closing, it->id,
                                              it->client_ctx);
            }
            end_op(b);
        });
    }
}

void call_manager::ingress_down() {
    for (auto& [vh, r] : vcs_) {
        if (r.state == phase::active) {
            log::notice("call '{}': its connection '{}' is down; closing it", r.call.name,
                        connection_);
            retire(r, 0, {}, true);
        }
    }
}

} // namespace vcplane
