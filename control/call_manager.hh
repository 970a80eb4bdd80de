#pragma once
// The call manager of one connection: the provider of the call-management NPI for calls whose
// ingress is that connection (DESIGN §5.2–5.3). Clients reach it only through an NMR binding.
//
//   make_call   publishes the VC and its party array: SUCCESS (software only, no wait).
//   close_call  unpublishes the VC: PENDING; after the grace period the VC and its parties
//               are freed and close_call_complete reaches the client, exactly once.
//
// When its connection goes away the call manager deregisters: each bound client is detached,
// which closes that client's calls here (incoming_close_call after the grace period) and
// returns PENDING until those completions ran. When another connection goes away, parties
// that leave through it are dropped (incoming_drop_party), or the call is closed if no party
// would remain.

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "control/call_management.hh"
#include "control/grace_period.hh"
#include "control/nmr.hh"
#include "control/switch_state.hh"

namespace vcplane {

class call_manager final : public nmr::provider, public callmgmt::provider_dispatch {
public:
    call_manager(std::string connection, switch_state& state, grace_period_source& gp,
                 nmr::registrar& reg);
    ~call_manager() override;

    nmr::status register_provider();
    // Deregisters (closing every call of every client here); done runs on the control thread
    // once the deregistration is complete.
    void deregister(std::function<void()> done);
    // Connection `gone` is going away: drop the parties of calls here that leave through it.
    void egress_gone(const std::string& gone);

    const std::string& connection() const { return connection_; }
    size_t call_count() const { return owner_.size(); }

    // nmr::provider
    nmr::status attach_client(nmr::handle binding, void* provider_context,
                              const nmr::registration_instance& client, void* client_binding,
                              const void* client_dispatch, void** provider_binding,
                              const void** provider_dispatch) override;
    nmr::status detach_client(void* provider_binding) override;
    void cleanup_binding_context(void* provider_binding) override;

    // callmgmt::provider_dispatch
    callmgmt::status make_call(void* provider_binding, const callmgmt::call_spec& spec,
                               void* client_call_ctx, callmgmt::call_handle* out) override;
    callmgmt::status close_call(void* provider_binding, callmgmt::call_handle call) override;

private:
    struct binding;
    void begin_op(binding& b);
    void end_op(binding& b);
    void retire_call(binding& b, callmgmt::call_handle id, bool incoming);

    std::string connection_;
    switch_state& state_;
    grace_period_source& gp_;
    nmr::registrar& reg_;
    nmr::module_id module_;
    nmr::handle registration_;
    std::map<callmgmt::call_handle, binding*> owner_; // open calls and who made them
};

// The config file's client of every call manager: makes the calls the config provisions as
// soon as their ingress call manager is attached and every party's connection is up. A call
// that its connection's removal closed is made again when the connection comes back.
class provisioner final : public nmr::client, public callmgmt::client_dispatch {
public:
    provisioner(const vcplane_config& cfg, const switch_state& state, nmr::registrar& reg);
    ~provisioner() override;

    nmr::status register_client();
    // Shutdown: deregister and wait (pump runs the control loop once).
    void deregister_and_wait(const std::function<void()>& pump);
    // A connection came up: calls that were waiting for it may be made now.
    void connection_up();

    size_t calls_made() const { return made_.size(); }
    size_t calls_waiting() const;

    // nmr::client
    nmr::status attach_provider(nmr::handle binding, void* client_context,
                                const nmr::registration_instance& provider) override;
    nmr::status detach_provider(void* client_binding) override;
    void cleanup_binding_context(void* client_binding) override;

    // callmgmt::client_dispatch
    void close_call_complete(void* client_binding, callmgmt::status s, callmgmt::call_handle call,
                             void* client_call_ctx) override;
    void incoming_close_call(void* client_binding, callmgmt::status reason,
                             callmgmt::call_handle call, void* client_call_ctx) override;
    void incoming_drop_party(void* client_binding, callmgmt::status reason,
                             callmgmt::call_handle call, const std::string& party,
                             void* client_call_ctx) override;

private:
    struct binding;
    void make_ready_calls();

    const vcplane_config& cfg_;
    const switch_state& state_;
    nmr::registrar& reg_;
    nmr::module_id module_{"provisioner/config"};
    nmr::handle registration_;
    std::map<std::string, binding*> by_connection_;
    std::map<std::string, callmgmt::call_handle> made_; // call name -> handle
    std::set<std::string> reported_waiting_;
    bool leaving_ = false; // deregistering: the calls close because we go, not the ports
};

} // namespace vcplane
