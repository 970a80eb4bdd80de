#pragma once
// Threading: control thread only. Completions arrive from the call managers on the control
// thread, after grace periods; a detach completes (NMR) from inside the last of them.
//
// A call-management client's side of its NMR bindings (docs/contracts.md §1, §4): one binding
// per call manager (per connection), each counting the client's requests that answered
// PENDING and whose completion has not come yet. A detach waits for those completions: it
// answers PENDING while any is outstanding and reports itself complete when the last one
// arrives. The binding context handed to the call manager is the binding itself, so every
// completion the client receives names the binding it belongs to.
//
// Who uses it: the config provisioner, every control session, the tests' client. Each passes
// its own completions (client_dispatch) and calls completed() from the completions of
// requests that pended (drop_party_complete, close_call_complete).

#include <functional>
#include <map>
#include <string>

#include "contracts/callmgmt/call_management.hh"
#include "contracts/nmr/nmr.hh"

namespace vcplane::callmgmt {

class client_bindings final : public nmr::client {
public:
    struct binding {
        provider_ref ref;
        unsigned pending = 0; // requests that answered PENDING, completion not yet delivered
        bool detaching = false;
    };

    // module_name names the client in the registrar (and in the call managers' logs).
    client_bindings(nmr::registrar& reg, client_dispatch& completions, std::string module_name);
    ~client_bindings() override = default;
    client_bindings(const client_bindings&) = delete;
    client_bindings& operator=(const client_bindings&) = delete;

    // Whether to bind to a call manager that appears (default: always); after_attach runs once
    // a binding is made. Both are the owner's: set them before register_client().
    std::function<bool(const std::string& connection)> accepts;
    std::function<void(binding&)> after_attach;

    nmr::status register_client();
    bool registered() const { return registered_; }
    // Deregisters: every binding is detached (its call managers close what the client made
    // there). Always PENDING; then either wait here (pump runs the control loop once) or have
    // done run when the deregistration completes.
    nmr::status deregister();
    void wait_for_deregister(const std::function<void()>& pump);
    void on_deregistered(std::function<void()> done);

    binding* find(const std::string& connection) const;
    const std::string& module_name() const { return module_.name; }
    const std::map<std::string, binding*>& bindings() const { return by_connection_; }
    // Binding contexts not yet cleaned up (attached, or detaching).
    size_t contexts() const { return contexts_; }

    // A request through b, through call_through(): NOINTERFACE without reaching the call manager
    // when b is going away. A PENDING answer counts until completed() is called for it.
    template <typename F>
    status request(binding& b, F&& f) {
        const status s = call_through(reg_, b.ref, std::forward<F>(f));
        if (s == status::pending) {
            ++b.pending;
        }
        return s;
    }
    // Why b's last request failed: the call manager's reason, or that b is going away.
    std::string last_error(const binding& b, status s) const;
    // The completion of a request that pended arrived; client_binding is the binding the call
    // manager named in it.
    void completed(void* client_binding);

    // nmr::client
    nmr::status attach_provider(nmr::handle binding, void* client_context,
                                const nmr::registration_instance& provider) override;
    nmr::status detach_provider(void* client_binding) override;
    void cleanup_binding_context(void* client_binding) override;

private:
    nmr::registrar& reg_;
    client_dispatch& completions_;
    nmr::module_id module_;
    nmr::handle registration_;
    bool registered_ = false;
    std::map<std::string, binding*> by_connection_;
    size_t contexts_ = 0;
};

} // namespace vcplane::callmgmt
