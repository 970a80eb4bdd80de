#pragma once
// The control plane of a running switch: everything the control thread owns, wired the way
// docs/design.md §5 says.
//
//   ports --(claim loop)--> connection_manager --up--> port started, published to workers,
//                                                       call_manager registered (NMR provider)
//   provisioner (NMR client) --attaches--> call managers --make_call--> VCs in the tables
//
// A port that goes away (hot removal, detach, disconnect) is torn down in the reverse order:
// parties leaving through it are dropped from other calls, its call manager deregisters
// (closing the calls on it), the workers stop polling it, and after a grace period the port
// is stopped; only then may its device be removed.
//
// Control thread only. The caller runs the loop: it watches grace_periods().event_fd() (for
// rcu_grace_periods) and device_events, calls handle() for device events and flush() at the
// end of every loop iteration.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "contracts/cm/connection_manager.hh"
#include "contracts/nmr/nmr.hh"
#include "contracts/nsp/name_space.hh"
#include "control/call_manager.hh"
#include "control/config_csp.hh"
#include "control/grace_period.hh"
#include "control/provisioner.hh"
#include "control/status_snapshot.hh"
#include "control/switch_state.hh"
#include "dataplane/worker.hh"
#include "port/hotplug.hh"

namespace vcplane {

class control_plane {
public:
    // post: run a function later on the control thread (NMR completions). The plane makes
    // `workers` workers (not launched: the caller runs them on its lcores).
    control_plane(const vcplane_config& cfg, grace_period_source& gp, rte_mempool* pool,
                  unsigned workers, nmr::registrar::post_fn post);
    ~control_plane();
    control_plane(const control_plane&) = delete;
    control_plane& operator=(const control_plane&) = delete;

    // Registers the provisioner, connects the config's devargs connections and offers every
    // port present to the Connection Manager.
    void start();
    // Tears everything down; pump runs the control loop once (for completions).
    void stop(const std::function<void()>& pump);

    // Hot-plug by the operator: probe a device (its port then goes through the claim loop),
    // or remove one (its connection, if any, is torn down first).
    probe_result attach_port(const std::string& devargs);
    bool detach_port(const std::string& device, std::string* error);
    cm::result disconnect(const std::string& connection);
    void handle(const device_event& e);

    // Reload: the difference between the running configuration and `next`, applied live as
    // contract operations on the file's own calls (control/provisioner.hh) and services (the
    // namespace) unless dry_run.
    // Differences only a restart applies are reported in plan.restart_required, not applied.
    struct reload_report {
        reload_plan plan;
        std::vector<provisioner::step_outcome> outcomes; // one per step; empty for a dry run
        bool dry_run = false;
    };
    reload_report reload(const vcplane_config& next, bool dry_run);
    void flush() { gp_.flush(); }
    // Once a second: every connection's link is read, and a change no event reported is
    // applied as the event would have been (poll_links); then what the file names and a call
    // manager refused to change is tried again (provisioner::converge).
    void tick() {
        poll_links();
        provisioner_.converge();
    }
    // The link of every connected or link-down connection, read from its port: a PMD that
    // reports link changes by no event, or whose interrupt-driven status goes stale, is still
    // followed within a second (README "Bare metal", link state).
    void poll_links();
    // with_ethdev: also read link state and ethdev stats and rebuild the per-VC and per-party
    // series list (a timer does, about once a second).
    std::shared_ptr<status_snapshot> snapshot(bool with_ethdev) const;
    // After a snapshot(true) was published (and under snapshot_cell::hold_series()): frees the
    // counter slots of objects gone before it was built (control/switch_state.hh).
    void release_retired_counter_slots() { state_.release_retired_slots(); }

    // The NSPv2 namespace: the switch's names, the file's [services] (owned by no session:
    // sessions look them up but cannot change them) and what sessions register.
    nsp::name_space& names() { return names_; }
    const nsp::name_space& names() const { return names_; }
    static constexpr nsp::session_id file_session = 0;

    const switch_state& state() const { return state_; }
    // How full each mbuf pool the workers draw from is (frames, chained-replica headers,
    // payload references). Idle, each is as full as it was once the ports had started: an
    // mbuf short is one lost.
    struct pool_fill {
        std::string name;
        unsigned size, available;
    };
    std::vector<pool_fill> pool_fills() const;
    const cm::connection_manager& connections() const { return cm_; }
    const nmr::registrar& registrar() const { return reg_; }
    nmr::registrar& registrar() { return reg_; } // clients register through it
    const provisioner& config_provisioner() const { return provisioner_; }
    const std::vector<std::unique_ptr<worker>>& workers() const { return workers_; }
    // The call manager of a connection (nullptr if none), for tests and status.
    call_manager* find_call_manager(const std::string& connection) const;
    const std::map<std::string, std::unique_ptr<call_manager>>& call_managers() const {
        return call_managers_;
    }

private:
    std::string up(const cm::connection& c); // "" or why the data path could not start
    void down(const cm::connection& c, bool removed);
    void link(const cm::connection& c);
    void retire(std::unique_ptr<call_manager> m);
    void publish_rx_queues();
    bool send_close_data(const std::string& ingress, const connection_state& out,
                         const party_spec& p, uint32_t party_slot, std::span<const uint8_t> data);
    cm::adapter adapter_of(uint16_t port) const;

    static vcplane_config without_calls(vcplane_config cfg);
    std::vector<nlohmann::json> switch_names() const;
    nsp::wsa register_file_service(const service_config& svc);
    void register_file_services();
    provisioner::step_outcome apply_service_step(const reload_step& step,
                                                 const vcplane_config& next);
    static void read_xstats(uint16_t port, std::vector<port_xstat>& out);

    const vcplane_config& cfg_;
    // What the switch runs but its calls (the provisioner keeps those): the start-up file's
    // fixed parts, and the [services] of the last reload.
    vcplane_config running_;
    grace_period_source& gp_;
    rte_mempool* pool_;
    nmr::registrar reg_;
    switch_state state_;
    struct pool_deleter {
        void operator()(rte_mempool* p) const noexcept { rte_mempool_free(p); }
    };
    // Chained replicas of large frames (dataplane/worker.hh): declared before workers_, so
    // that buffers a worker still holds go back before the pools are freed.
    std::unique_ptr<rte_mempool, pool_deleter> header_pool_, payload_ref_pool_, linear_pool_;
    static constexpr unsigned linear_buffers = 511; // a mempool's best size is 2^n - 1
    std::vector<std::unique_ptr<worker>> workers_;  // after state_: they read its table
    cm::connection_manager cm_;
    cm::config_csp csp_;
    provisioner provisioner_;
    std::map<std::string, std::unique_ptr<call_manager>> call_managers_;
    nsp::name_space names_; // after call_managers_: its names are theirs
    std::vector<std::unique_ptr<call_manager>> leaving_; // deregistering, freed on completion
    std::vector<uint16_t> started_ports_;
    // Close-data frames, control thread -> worker i (its TX queue carried the party's copies).
    std::vector<rte_ring*> control_rings_;
    // The worker whose TX queue carried the copies counted in party_slot, so that the close
    // data queues behind them: the one worker that counted copies in it, else the worker that
    // polls RX queue 0 of the call's ingress (every frame of a port connection, and of a port
    // whose NIC does not spread its VCs).
    unsigned serving_worker(const connection_state& ingress, uint32_t party_slot) const;
    void free_control_rings();
    unsigned queue0_worker(const connection_state& c) const;
    mutable std::map<uint16_t, port_snapshot> ethdev_cache_;    // last ethdev reading per port
    mutable std::shared_ptr<const traffic_series_list> series_; // rebuilt with ethdev readings
};

} // namespace vcplane
