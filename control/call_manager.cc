#include "control/call_manager.hh"

#include <algorithm>
#include <fmt/format.h>

#include "control/log.hh"

namespace vcplane {

using callmgmt::call_handle;
using cstatus = callmgmt::status;

struct call_manager::binding {
    nmr::handle handle;
    void* client_binding;
    callmgmt::client_dispatch* client;
    std::string client_name;
    std::map<call_handle, void*> calls; // open calls -> client's call context
    unsigned pending = 0;               // completions not yet delivered
    bool detaching = false;
};

call_manager::call_manager(std::string connection, switch_state& state, grace_period_source& gp,
                           nmr::registrar& reg)
    : connection_(std::move(connection))
    , state_(state)
    , gp_(gp)
    , reg_(reg)
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
                    {},
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

// Unpublish now; free, tell the client and finish after the grace period.
void call_manager::retire_call(binding& b, call_handle id, bool incoming) {
    void* ctx = b.calls.at(id);
    b.calls.erase(id);
    owner_.erase(id);
    retired_call r = state_.unpublish_call(id);
    begin_op(b);
    gp_.defer([this, &b, id, ctx, r, incoming]() mutable {
        r.free();
        if (incoming) {
            b.client->incoming_close_call(b.client_binding, cstatus::closing, id, ctx);
        } else {
            b.client->close_call_complete(b.client_binding, cstatus::success, id, ctx);
        }
        end_op(b);
    });
}

nmr::status call_manager::detach_client(void* provider_binding) {
    auto& b = *static_cast<binding*>(provider_binding);
    b.detaching = true;
    std::vector<call_handle> open;
    for (const auto& [id, ctx] : b.calls) {
        open.push_back(id);
    }
    for (call_handle id : open) {
        retire_call(b, id, true);
    }
    return b.pending == 0 ? nmr::status::success : nmr::status::pending;
}

void call_manager::cleanup_binding_context(void* provider_binding) {
    delete static_cast<binding*>(provider_binding);
}

cstatus call_manager::make_call(void* provider_binding, const callmgmt::call_spec& spec,
                                void* client_call_ctx, call_handle* out) {
    auto& b = *static_cast<binding*>(provider_binding);
    if (b.detaching || out == nullptr) {
        return cstatus::failure;
    }
    try {
        const call_state& c = state_.make_call(connection_, spec);
        b.calls.emplace(c.id, client_call_ctx);
        owner_.emplace(c.id, &b);
        *out = c.id;
        log::info("call '{}' on '{}' made by {} ({} parties)", spec.name, connection_,
                  b.client_name, spec.parties.size());
        return cstatus::success;
    } catch (const std::bad_alloc&) {
        return cstatus::resources;
    } catch (const std::invalid_argument& e) {
        log::warning("make call refused: {}", e.what());
        return cstatus::failure;
    }
}

cstatus call_manager::close_call(void* provider_binding, call_handle id) {
    auto& b = *static_cast<binding*>(provider_binding);
    if (b.calls.count(id) == 0) {
        return cstatus::invalid_handle; // never made, closed already, or someone else's
    }
    retire_call(b, id, false);
    return cstatus::pending;
}

void call_manager::egress_gone(const std::string& gone) {
    std::vector<call_handle> ids;
    for (const auto& [id, b] : owner_) {
        ids.push_back(id);
    }
    for (call_handle id : ids) {
        const call_state* c = state_.find_call(id);
        if (c == nullptr) {
            continue;
        }
        std::vector<callmgmt::party_spec> keep, dropped;
        for (const auto& p : c->parties) {
            (p.connection == gone ? dropped : keep).push_back(p);
        }
        if (dropped.empty()) {
            continue;
        }
        binding& b = *owner_.at(id);
        if (keep.empty()) {
            // The last party cannot be dropped: the call closes instead.
            log::notice("call '{}': every party left through '{}'; closing it", c->name, gone);
            retire_call(b, id, true);
            continue;
        }
        void* ctx = b.calls.at(id);
        const std::string call_name = c->name;
        retired_call old = state_.replace_parties(id, keep);
        begin_op(b);
        gp_.defer([this, &b, id, ctx, old, dropped]() mutable {
            old.free();
            for (const auto& p : dropped) {
                b.client->incoming_drop_party(b.client_binding, cstatus::closing, id, p.name, ctx);
            }
            end_op(b);
        });
        log::notice("call '{}': dropped {} part{} leaving through '{}'", call_name, dropped.size(),
                    dropped.size() == 1 ? "y" : "ies", gone);
    }
}

struct provisioner::binding {
    callmgmt::provider_ref provider;
    unsigned pending = 0;
    bool detaching = false;
};

provisioner::provisioner(const vcplane_config& cfg, const switch_state& state, nmr::registrar& reg)
    : cfg_(cfg)
    , state_(state)
    , reg_(reg) {}

provisioner::~provisioner() = default;

nmr::status provisioner::register_client() {
    nmr::registration_instance inst;
    inst.npi = &callmgmt::npi;
    inst.module = &module_;
    return reg_.register_client(*this, inst, this, &registration_);
}

void provisioner::deregister_and_wait(const std::function<void()>& pump) {
    leaving_ = true;
    if (reg_.deregister_client(registration_) == nmr::status::pending) {
        reg_.wait_for_deregister_complete(registration_, pump);
    }
}

nmr::status provisioner::attach_provider(nmr::handle h, void*,
                                         const nmr::registration_instance& provider) {
    const auto* connection = static_cast<const std::string*>(provider.npi_specific);
    if (connection == nullptr || by_connection_.count(*connection) != 0) {
        return nmr::status::nointerface;
    }
    auto* b = new binding{};
    b->provider.binding = h;
    b->provider.connection = *connection;
    void* pctx = nullptr;
    const void* pdisp = nullptr;
    const nmr::status s = reg_.client_attach_provider(
        h, b, static_cast<callmgmt::client_dispatch*>(this), &pctx, &pdisp);
    if (s != nmr::status::success) {
        delete b; // on failure the client frees its own context
        return s;
    }
    b->provider.provider_binding = pctx;
    b->provider.dispatch = static_cast<callmgmt::provider_dispatch*>(const_cast<void*>(pdisp));
    by_connection_[*connection] = b;
    make_ready_calls();
    return s;
}

nmr::status provisioner::detach_provider(void* client_binding) {
    auto* b = static_cast<binding*>(client_binding);
    b->detaching = true;
    by_connection_.erase(b->provider.connection);
    return b->pending == 0 ? nmr::status::success : nmr::status::pending;
}

void provisioner::cleanup_binding_context(void* client_binding) {
    delete static_cast<binding*>(client_binding);
}

size_t provisioner::calls_waiting() const {
    return cfg_.calls.size() - made_.size();
}

void provisioner::connection_up() {
    make_ready_calls();
}

void provisioner::make_ready_calls() {
    for (const auto& call : cfg_.calls) {
        if (made_.count(call.name) != 0) {
            continue;
        }
        auto it = by_connection_.find(call.connection);
        std::string missing = it == by_connection_.end() ? call.connection : "";
        for (const auto& p : call.parties) {
            if (missing.empty() && state_.find_connection(p.connection) == nullptr) {
                missing = p.connection;
            }
        }
        if (!missing.empty()) {
            if (reported_waiting_.insert(call.name).second) {
                log::notice("call '{}' waits for connection '{}'", call.name, missing);
            }
            continue;
        }
        callmgmt::call_spec spec{call.name, call.key, {}};
        for (const auto& p : call.parties) {
            spec.parties.push_back(callmgmt::party_spec{p.name, p.connection, p.key, p.next_hop});
        }
        callmgmt::call_handle h = 0;
        const auto s = callmgmt::call_through(reg_, it->second->provider,
                                              [&](callmgmt::provider_dispatch& d, void* pctx) {
                                                  return d.make_call(pctx, spec, nullptr, &h);
                                              });
        if (s == callmgmt::status::success) {
            made_[call.name] = h;
            reported_waiting_.erase(call.name);
        } else {
            log::error("{}: call '{}' could not be made: {}", call.origin.where(), call.name,
                       callmgmt::status_name(s));
        }
    }
}

void provisioner::close_call_complete(void* client_binding, callmgmt::status, callmgmt::call_handle,
                                      void*) {
    auto* b = static_cast<binding*>(client_binding);
    if (--b->pending == 0 && b->detaching) {
        reg_.client_detach_provider_complete(b->provider.binding);
    }
}

void provisioner::incoming_close_call(void*, callmgmt::status reason, callmgmt::call_handle call,
                                      void*) {
    for (auto it = made_.begin(); it != made_.end(); ++it) {
        if (it->second == call) {
            if (!leaving_) {
                log::notice("call '{}' was closed by its call manager ({}); it is made again "
                            "when its connections are back",
                            it->first, callmgmt::status_name(reason));
            }
            made_.erase(it);
            return;
        }
    }
}

void provisioner::incoming_drop_party(void*, callmgmt::status, callmgmt::call_handle call,
                                      const std::string& party, void*) {
    for (const auto& [name, h] : made_) {
        if (h == call) {
            log::notice("call '{}': party '{}' was dropped by its call manager", name, party);
        }
    }
}

} // namespace vcplane
