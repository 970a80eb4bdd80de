#pragma once
// The config file's client of every call manager (an NMR client of the call-management NPI):
// it owns the calls the file provisions. It makes each as soon as its ingress and a party's
// egress connection are up, re-adds parties whose connection comes back, makes a call again
// when its ingress connection returns, and on a reload applies the plan's steps as contract
// operations (config/config_diff.hh). Calls made by control sessions are not its own and are
// never touched by it.
//
// It converges to the file whatever a call manager answered: a party or call it made that the
// file no longer names (or names otherwise) is *leaving* until its drop or close is accepted;
// a refused one (RESOURCES, a close that failed part-way) is tried again at every converge()
// — after every connection or call event, and once a second (control_plane::tick) — and is
// never forgotten meanwhile (leaving()).
//
// Threading: control thread only. Call-manager indications that change what it made post a
// converge() rather than call into a call manager from inside its own callback.

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "config/config_diff.hh"
#include "contracts/callmgmt/call_management.hh"
#include "contracts/callmgmt/client_bindings.hh"
#include "contracts/nmr/nmr.hh"
#include "control/switch_state.hh"

namespace vcplane {

// The config file's client of every call manager: makes the calls the config provisions as
// soon as their ingress and every party's egress connection are up, re-adds parties whose
// connection comes back, and makes a call again when its ingress connection returns.
class provisioner final : public callmgmt::client_dispatch {
public:
    // post: runs a function later on the control thread.
    provisioner(const vcplane_config& cfg, const switch_state& state, nmr::registrar& reg,
                nmr::registrar::post_fn post);
    ~provisioner() override;

    nmr::status register_client();
    // Shutdown: deregister and wait (pump runs the control loop once).
    void deregister_and_wait(const std::function<void()>& pump);
    // A connection came up: calls and parties waiting for it are made now.
    void connection_up();
    // Makes what the file names and can be made, and drops or closes what it made that the
    // file no longer names.
    void converge();

    size_t calls_made() const { return made_.size(); }
    size_t calls_waiting() const;
    // What it made that the file no longer names, still waiting for its drop or close to be
    // accepted: "call/party", or "call" for a whole call.
    const std::set<std::string>& leaving() const { return leaving_names_; }
    bool is_leaving(const std::string& call, const std::string& party) const;
    // Its name as a client of the call managers (call_manager::call_info::owner).
    const std::string& module_name() const { return bindings_.module_name(); }
    // The calls the file provisions now (the running file's, or the last reloaded one's).
    const std::vector<call_config>& calls() const { return calls_; }

    // Reload: applies a plan's steps (config/config_diff.hh) through the call managers and
    // makes `next` the calls the file provisions. Only calls this provisioner made are
    // touched; a session's calls are never. One outcome per call step, in order (service
    // steps are skipped: they are the namespace's).
    struct step_outcome {
        // done: applied; pending: accepted, completes after a grace period; waiting: made
        // when its connection comes up; refused: not applied (status and detail say why).
        enum class result { done, pending, waiting, refused };
        reload_step step;
        result outcome = result::done;
        std::string status = "SUCCESS"; // for people: the contract's status name, or WAITING
        std::string detail;             // why it was refused, or what it waits for
        bool succeeded() const { return outcome != result::refused; }

        // The outcome a contract request's status makes.
        static step_outcome of(reload_step step, callmgmt::status s, std::string detail = "");
        static step_outcome waiting(reload_step step, std::string what);
        static step_outcome refused(reload_step step, std::string status, std::string why);
    };
    std::vector<step_outcome> apply(const reload_plan& plan, std::vector<call_config> next);

    // callmgmt::client_dispatch
    void drop_party_complete(void* cb, callmgmt::status s, callmgmt::party_handle party,
                             void* client_party_ctx) override;
    void close_call_complete(void* cb, callmgmt::status s, callmgmt::vc_handle vc,
                             callmgmt::party_handle last, void* client_vc_ctx) override;
    void incoming_close_call(void* cb, callmgmt::status reason, callmgmt::vc_handle vc,
                             void* client_vc_ctx) override;
    void incoming_drop_party(void* cb, callmgmt::status reason, callmgmt::party_handle party,
                             void* client_party_ctx) override;

private:
    using binding = callmgmt::client_bindings::binding;
    struct made_party {
        callmgmt::party_handle handle;
        party_spec spec; // as it was made
    };
    using party_map = std::map<std::string, made_party>; // by party name
    struct made_call {
        std::string connection;
        callmgmt::vc_handle vc;
        uint32_t key;
        call_encapsulation encap;
        party_map parties; // live in the call manager: a handle is forgotten when it dies
    };
    // Whether the file names m (as call `name`) as it was made, and each of its parties.
    bool named(const std::string& name, const made_call& m) const;
    bool named(const call_config& call, const std::string& party, const made_party& p) const;
    // What it made that the file does not name as it was made: (call, party), party "" for a
    // whole call.
    std::vector<std::pair<std::string, std::string>> unnamed() const;
    static std::string leaving_name(const std::string& call, const std::string& party);
    // Drops or closes what the file no longer names; refusals stay leaving.
    void retire_unnamed();
    void converge_soon();
    // A connection calls and parties may use: present, with its link up.
    bool usable(const std::string& connection) const;
    void make_ready_calls();
    void add_missing_parties(const call_config& cfg, made_call& m);
    const call_config* find_call(const std::string& name) const;
    // One call: made, or why not (status WAITING: a connection is not up).
    step_outcome make_one(const call_config& call);
    step_outcome add_one(const call_config& call, made_call& m, const party_config& p);
    step_outcome close_one(const std::string& name);
    step_outcome drop_one(const std::string& call, const std::string& party);
    // Drops one of a call's parties (not its last) through b.
    step_outcome drop_party_of(binding& b, const std::string& call, made_call& m,
                               party_map::iterator party);
    step_outcome modify_one(const call_config& call);
    // One request through a call manager: the outcome's status, and the call manager's reason
    // when it failed. PENDING requests are counted until their completion (detach waits).
    template <typename F>
    step_outcome request(binding& b, step_outcome o, F&& f);

    std::vector<call_config> calls_;
    const switch_state& state_;
    callmgmt::client_bindings bindings_;
    std::map<std::string, made_call> made_; // by call name
    std::set<std::string> reported_waiting_;
    std::set<std::string> leaving_names_; // see leaving()
    nmr::registrar::post_fn post_;
    bool converge_posted_ = false;
    std::shared_ptr<const bool> alive_ = std::make_shared<const bool>(true); // for posted work
    bool leaving_ = false; // deregistering: the calls close because we go, not the ports
};

} // namespace vcplane
