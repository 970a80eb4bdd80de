#include "contracts/nmr/nmr.hh"

#include "base/contract_stats.hh"

#include <algorithm>

#include "base/log.hh"

namespace vcplane::nmr {

const char* status_name(status s) {
    return name_of(s);
}

struct registrar::registration {
    enum class phase : uint8_t { free, active, deregistering, complete } state = phase::free;
    uint32_t generation = 1;
    bool is_client = false;
    client* c = nullptr;
    provider* p = nullptr;
    registration_instance inst;
    void* context = nullptr;
    std::vector<uint32_t> bindings; // slots
    std::function<void()> on_complete;
    bool waiter = false; // wait_for_deregister_complete is looping on it
};

struct registrar::binding {
    bool in_use = false;
    uint32_t generation = 1;
    binding_state state = binding_state::attaching;
    uint32_t client_reg = 0;
    uint32_t provider_reg = 0;
    void* client_ctx = nullptr;
    const void* client_dispatch = nullptr;
    void* provider_ctx = nullptr;
    const void* provider_dispatch = nullptr;
    bool client_done = false;
    bool provider_done = false;
};

registrar::registrar(post_fn post)
    : post_(std::move(post)) {}

registrar::~registrar() {
    const registrar_counts c = counts();
    if (c.clients + c.providers + c.attached + c.attaching + c.detaching != 0) {
        log::warning("NMR registrar destroyed with {} clients, {} providers and {} bindings left",
                     c.clients, c.providers, c.attached + c.attaching + c.detaching);
    }
}

registrar::registration* registrar::find(handle h) {
    if (h.slot >= registrations_.size()) {
        return nullptr;
    }
    registration& r = registrations_[h.slot];
    if (r.state == registration::phase::free || r.generation != h.generation) {
        return nullptr;
    }
    return &r;
}

registrar::binding* registrar::find_binding(handle h) {
    if (h.slot >= bindings_.size()) {
        return nullptr;
    }
    binding& b = bindings_[h.slot];
    return b.in_use && b.generation == h.generation ? &b : nullptr;
}

const registrar::binding* registrar::find_binding(handle h) const {
    return const_cast<registrar*>(this)->find_binding(h);
}

// Every registrar call's outcome is counted once, under the name of the call.
static status counted(const char* operation, status s) {
    contract_stats::process().count("nmr", operation, status_name(s));
    return s;
}

bool registrar::binding_usable(handle h) const {
    const binding* b = find_binding(h);
    return b != nullptr && b->state == binding_state::attached;
}

bool registrar::binding_alive(handle h) const {
    return find_binding(h) != nullptr;
}

status registrar::add_registration(client* c, provider* p, const registration_instance& inst,
                                   void* ctx, handle* out) {
    if (inst.npi == nullptr || inst.module == nullptr || out == nullptr) {
        return status::invalid_parameter;
    }
    uint32_t slot;
    if (!free_registrations_.empty()) {
        slot = free_registrations_.back();
        free_registrations_.pop_back();
    } else {
        slot = uint32_t(registrations_.size());
        registrations_.emplace_back();
    }
    registration& r = registrations_[slot];
    r.state = registration::phase::active;
    r.is_client = c != nullptr;
    r.c = c;
    r.p = p;
    r.inst = inst;
    r.context = ctx;
    *out = handle{slot, r.generation};
    // Pair it with every active peer of the same NPI. The client decides in both cases: a new
    // client is offered every provider registered already, a new provider every client.
    for (uint32_t i = 0; i < registrations_.size(); ++i) {
        const registration& peer = registrations_[i];
        if (peer.state != registration::phase::active || peer.is_client == r.is_client ||
            !(*peer.inst.npi == *inst.npi)) {
            continue;
        }
        if (r.is_client) {
            attach(slot, i);
        } else {
            attach(i, slot);
        }
    }
    return status::success;
}

status registrar::register_client(client& c, const registration_instance& inst, void* ctx,
                                  handle* out) {
    return counted("register_client", add_registration(&c, nullptr, inst, ctx, out));
}

status registrar::register_provider(provider& p, const registration_instance& inst, void* ctx,
                                    handle* out) {
    return counted("register_provider", add_registration(nullptr, &p, inst, ctx, out));
}

void registrar::attach(uint32_t client_slot, uint32_t provider_slot) {
    uint32_t slot;
    if (!free_bindings_.empty()) {
        slot = free_bindings_.back();
        free_bindings_.pop_back();
    } else {
        slot = uint32_t(bindings_.size());
        bindings_.emplace_back();
    }
    binding& b = bindings_[slot];
    b.in_use = true;
    b.state = binding_state::attaching;
    b.client_reg = client_slot;
    b.provider_reg = provider_slot;
    b.client_ctx = b.provider_ctx = nullptr;
    b.client_dispatch = b.provider_dispatch = nullptr;
    b.client_done = b.provider_done = false;
    const handle h{slot, b.generation};
    registration& c = registrations_[client_slot];
    const status s = c.c->attach_provider(h, c.context, registrations_[provider_slot].inst);
    binding& after = bindings_[slot]; // the vector may have grown inside the callback
    // A client that returned success without attaching has declined the provider.
    const status outcome = after.state == binding_state::attached ? status::success
                           : s == status::success                 ? status::nointerface
                                                                  : s;
    counted("attach", outcome);
    if (after.state == binding_state::attached) {
        if (s != status::success) {
            log::warning("NMR: client {} returned {} after attaching to {}; keeping the binding",
                         c.inst.module->name, status_name(s),
                         registrations_[provider_slot].inst.module->name);
        }
        registrations_[client_slot].bindings.push_back(slot);
        registrations_[provider_slot].bindings.push_back(slot);
        return;
    }
    // Declined or failed: the client freed its own context; no cleanup callbacks run.
    after.in_use = false;
    ++after.generation;
    free_bindings_.push_back(slot);
}

status registrar::client_attach_provider(handle h, void* client_ctx, const void* client_dispatch,
                                         void** provider_ctx, const void** provider_dispatch) {
    binding* b = find_binding(h);
    if (b == nullptr || b->state != binding_state::attaching || provider_ctx == nullptr ||
        provider_dispatch == nullptr) {
        return counted("client_attach_provider", status::invalid_parameter);
    }
    const uint32_t slot = h.slot;
    registration& p = registrations_[b->provider_reg];
    registration& c = registrations_[b->client_reg];
    void* pctx = nullptr;
    const void* pdisp = nullptr;
    const status s =
        p.p->attach_client(h, p.context, c.inst, client_ctx, client_dispatch, &pctx, &pdisp);
    binding& after = bindings_[slot];
    if (s != status::success) {
        return counted("client_attach_provider", s);
    }
    if (pdisp == nullptr) {
        // A provider with no dispatch table cannot be called: the binding never attached, so
        // no cleanup callback runs for it; what the provider made for it is its own.
        log::warning("NMR: provider {} accepted client {} without a dispatch table; refused",
                     p.inst.module->name, c.inst.module->name);
        return counted("client_attach_provider", status::invalid_parameter);
    }
    after.state = binding_state::attached;
    after.client_ctx = client_ctx;
    after.client_dispatch = client_dispatch;
    after.provider_ctx = pctx;
    after.provider_dispatch = pdisp;
    *provider_ctx = pctx;
    *provider_dispatch = pdisp;
    return counted("client_attach_provider", status::success);
}

status registrar::deregister_client(handle h) {
    return deregister(h, true);
}
status registrar::deregister_provider(handle h) {
    return deregister(h, false);
}

status registrar::deregister(handle h, bool is_client) {
    registration* r = find(h);
    const char* op = is_client ? "deregister_client" : "deregister_provider";
    if (r == nullptr || r->is_client != is_client || r->state != registration::phase::active) {
        return counted(op, status::invalid_parameter);
    }
    // Always PENDING: the deregistration completes later, on the control thread, even when
    // no binding is left to detach.
    counted(op, status::pending);
    r->state = registration::phase::deregistering;
    // Copy: detach callbacks may complete synchronously and change the list.
    const std::vector<uint32_t> slots = r->bindings;
    for (uint32_t slot : slots) {
        binding& b = bindings_[slot];
        if (!b.in_use || b.state != binding_state::attached) {
            continue; // already detaching because the peer deregistered first
        }
        b.state = binding_state::detaching;
        const handle bh{slot, b.generation};
        const status cs = counted("detach_provider",
                                  registrations_[b.client_reg].c->detach_provider(b.client_ctx));
        if (cs != status::pending) {
            side_done(bh, true);
        }
        if (!binding_alive(bh)) {
            continue;
        }
        const status ps =
            counted("detach_client", registrations_[bindings_[slot].provider_reg].p->detach_client(
                                         bindings_[slot].provider_ctx));
        if (ps != status::pending) {
            side_done(bh, false);
        }
    }
    maybe_complete(h.slot);
    return status::pending;
}

void registrar::client_detach_provider_complete(handle h) {
    binding* b = find_binding(h);
    if (b == nullptr || b->state != binding_state::detaching || b->client_done) {
        log::warning("NMR: stray client_detach_provider_complete (slot {})", h.slot);
        counted("client_detach_provider_complete", status::invalid_parameter);
        return;
    }
    counted("client_detach_provider_complete", status::success);
    side_done(h, true);
}

void registrar::provider_detach_client_complete(handle h) {
    binding* b = find_binding(h);
    if (b == nullptr || b->state != binding_state::detaching || b->provider_done) {
        log::warning("NMR: stray provider_detach_client_complete (slot {})", h.slot);
        counted("provider_detach_client_complete", status::invalid_parameter);
        return;
    }
    counted("provider_detach_client_complete", status::success);
    side_done(h, false);
}

void registrar::side_done(handle h, bool client_side) {
    binding* b = find_binding(h);
    if (b == nullptr) {
        return;
    }
    (client_side ? b->client_done : b->provider_done) = true;
    if (b->client_done && b->provider_done) {
        finish_binding(h.slot);
    }
}

void registrar::finish_binding(uint32_t slot) {
    binding& b = bindings_[slot];
    const uint32_t creg = b.client_reg, preg = b.provider_reg;
    void* cctx = b.client_ctx;
    void* pctx = b.provider_ctx;
    // The handle dies before the cleanup callbacks run: nothing can reach the contexts after.
    b.in_use = false;
    ++b.generation;
    free_bindings_.push_back(slot);
    registrations_[creg].c->cleanup_binding_context(cctx);
    registrations_[preg].p->cleanup_binding_context(pctx);
    for (uint32_t r : {creg, preg}) {
        auto& list = registrations_[r].bindings;
        list.erase(std::remove(list.begin(), list.end(), slot), list.end());
        maybe_complete(r);
    }
}

void registrar::maybe_complete(uint32_t slot) {
    registration& r = registrations_[slot];
    if (r.state != registration::phase::deregistering || !r.bindings.empty()) {
        return;
    }
    r.state = registration::phase::complete;
    counted(r.is_client ? "deregister_client_complete" : "deregister_provider_complete",
            status::success);
    deliver_complete(slot);
}

void registrar::deliver_complete(uint32_t slot) {
    registration& r = registrations_[slot];
    if (r.on_complete) {
        auto fn = std::move(r.on_complete);
        r.on_complete = nullptr;
        const handle h{slot, r.generation};
        post_([this, h, fn = std::move(fn)] {
            if (registration* live = find(h)) {
                live->state = registration::phase::free;
                ++live->generation;
                free_registrations_.push_back(h.slot);
            }
            fn();
        });
    }
}

status registrar::on_deregister_complete(handle h, std::function<void()> fn) {
    registration* r = find(h);
    if (r == nullptr || r->state == registration::phase::active || r->on_complete || r->waiter) {
        return counted("on_deregister_complete", status::invalid_parameter);
    }
    r->on_complete = std::move(fn);
    if (r->state == registration::phase::complete) {
        deliver_complete(h.slot); // completed before anyone asked
    }
    return counted("on_deregister_complete", status::success);
}

status registrar::wait_for_deregister_complete(handle h, const std::function<void()>& pump) {
    registration* r = find(h);
    if (r == nullptr || r->state == registration::phase::active || r->on_complete || r->waiter) {
        return counted("wait_for_deregister_complete", status::invalid_parameter);
    }
    r->waiter = true;
    while (find(h)->state != registration::phase::complete) {
        pump();
    }
    registration& done = *find(h);
    done.state = registration::phase::free;
    done.waiter = false;
    ++done.generation;
    free_registrations_.push_back(h.slot);
    return counted("wait_for_deregister_complete", status::success);
}

registrar_counts registrar::counts() const {
    registrar_counts c;
    for (const auto& r : registrations_) {
        if (r.state == registration::phase::free) {
            continue;
        }
        (r.is_client ? c.clients : c.providers)++;
        c.deregistering += r.state != registration::phase::active;
    }
    for (const auto& b : bindings_) {
        if (!b.in_use) {
            continue;
        }
        switch (b.state) {
        case binding_state::attaching: ++c.attaching; break;
        case binding_state::attached: ++c.attached; break;
        case binding_state::detaching: ++c.detaching; break;
        }
    }
    return c;
}

} // namespace vcplane::nmr
