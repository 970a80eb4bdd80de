#include "contracts/callmgmt/client_bindings.hh"

#include <memory>

namespace vcplane::callmgmt {

client_bindings::client_bindings(nmr::registrar& reg, client_dispatch& completions,
                                 std::string module_name)
    : reg_(reg)
    , completions_(completions)
    , module_{std::move(module_name)} {}

nmr::status client_bindings::register_client() {
    nmr::registration_instance inst;
    inst.npi = &npi;
    inst.module = &module_;
    const nmr::status s = reg_.register_client(*this, inst, this, &registration_);
    registered_ = s == nmr::status::success;
    return s;
}

nmr::status client_bindings::deregister() {
    return reg_.deregister_client(registration_);
}

void client_bindings::wait_for_deregister(const std::function<void()>& pump) {
    reg_.wait_for_deregister_complete(registration_, pump);
}

void client_bindings::on_deregistered(std::function<void()> done) {
    reg_.on_deregister_complete(registration_, std::move(done));
}

client_bindings::binding* client_bindings::find(const std::string& connection) const {
    auto it = by_connection_.find(connection);
    return it == by_connection_.end() ? nullptr : it->second;
}

std::string client_bindings::last_error(const binding& b, status s) const {
    if (s == status::nointerface) {
        return "the connection's call manager is going away"; // its context must not be touched
    }
    return b.ref.dispatch->last_error(b.ref.provider_binding);
}

void client_bindings::completed(void* client_binding) {
    auto* b = static_cast<binding*>(client_binding);
    if (--b->pending == 0 && b->detaching) {
        reg_.client_detach_provider_complete(b->ref.binding);
    }
}

nmr::status client_bindings::attach_provider(nmr::handle h, void*,
                                             const nmr::registration_instance& provider) {
    const auto* connection = static_cast<const std::string*>(provider.npi_specific);
    if (connection == nullptr || by_connection_.count(*connection) != 0 ||
        (accepts && !accepts(*connection))) {
        return nmr::status::nointerface;
    }
    auto b = std::make_unique<binding>();
    b->ref.binding = h;
    b->ref.connection = *connection;
    const void* dispatch = nullptr;
    const nmr::status s =
        reg_.client_attach_provider(h, b.get(), static_cast<client_dispatch*>(&completions_),
                                    &b->ref.provider_binding, &dispatch);
    if (s != nmr::status::success) {
        return s; // on failure the client frees its own context: b does
    }
    b->ref.dispatch = static_cast<provider_dispatch*>(const_cast<void*>(dispatch));
    binding& made = *b;
    by_connection_[*connection] = b.release();
    ++contexts_;
    if (after_attach) {
        after_attach(made);
    }
    return s;
}

nmr::status client_bindings::detach_provider(void* client_binding) {
    auto* b = static_cast<binding*>(client_binding);
    b->detaching = true;
    by_connection_.erase(b->ref.connection);
    return b->pending == 0 ? nmr::status::success : nmr::status::pending;
}

void client_bindings::cleanup_binding_context(void* client_binding) {
    delete static_cast<binding*>(client_binding);
    --contexts_;
}

} // namespace vcplane::callmgmt
