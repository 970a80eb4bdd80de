#include "daemon/daemon.hh"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <memory>
#include <optional>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "base/contract_stats.hh"
#include "base/event_loop.hh"
#include "base/log.hh"
#include "control/control_plane.hh"
#include "control/status_snapshot.hh"
#include "daemon/control_server.hh"
#include "daemon/metrics.hh"
#include "daemon/reload.hh"
#include "dataplane/rcu.hh"
#include "port/eal.hh"
#include "port/hotplug.hh"
#include "port/ports.hh"
#include "port/preflight.hh"

namespace vcplane {

namespace {

struct launch_args {
    worker* w;
    const std::atomic<bool>* stop;
};

int worker_lcore_main(void* arg) {
    auto* a = static_cast<launch_args*>(arg);
    a->w->run(*a->stop);
    return 0;
}

std::string port_list() {
    std::string out;
    for (uint16_t p : present_ports()) {
        out += out.empty() ? "" : ", ";
        out += fmt::format("{} ({})", port_device_name(p), format_mac(port_mac(p)));
    }
    return out.empty() ? "none" : out;
}

std::optional<uint16_t> configured_port(const connection_config& c) {
    return c.mac ? find_port_by_mac(*c.mac) : find_port_by_device(c.device);
}

// Every connection the config names by device or MAC must be there at start (devargs ones
// are probed by vcplane itself). Reports each missing one with the key that names it.
bool check_ports_present(const vcplane_config& cfg) {
    bool ok = true;
    for (const auto& c : cfg.connections) {
        if (!c.devargs.empty() || configured_port(c)) {
            continue;
        }
        const std::string what = c.mac ? fmt::format("no DPDK port has MAC {}", format_mac(*c.mac))
                                       : fmt::format("no DPDK port named '{}'", c.device);
        log::error("{}: {} (ports present: {}); fix: add it to eal.vdevs or eal.pci_allow "
                   "(bound to vfio-pci), or correct the name",
                   c.device_origin.where(), what, port_list());
        ok = false;
    }
    return ok;
}

void warn_numa(const vcplane_config& cfg) {
    for (const auto& c : cfg.connections) {
        const auto port = configured_port(c);
        const int port_socket = port ? rte_eth_dev_socket_id(*port) : -1;
        if (port_socket < 0) {
            continue;
        }
        for (size_t i = 1; i < cfg.eal.lcores.size(); ++i) {
            const int s = int(rte_lcore_to_socket_id(cfg.eal.lcores[i]));
            if (s != port_socket) {
                log::warning("preflight warning: connection '{}' sits on NUMA node {} but worker "
                             "lcore {} on node {}: every frame crosses the interconnect; fix: "
                             "choose worker lcores on node {}",
                             c.name, port_socket, cfg.eal.lcores[i], s, port_socket);
            }
        }
    }
}

// Ports hot-plugged later draw on this many ports' worth of spare buffers.
constexpr unsigned spare_ports = 2;

class running_switch {
public:
    running_switch(const vcplane_config& cfg, event_loop& loop)
        : cfg_(cfg)
        , loop_(loop) {}
    ~running_switch() { stop(); }

    int start() {
        if (!check_ports_present(cfg_)) {
            return exit_failure;
        }
        warn_numa(cfg_);
        const unsigned workers = unsigned(cfg_.eal.lcores.size() - 1);
        if (!make_pool(workers)) {
            return exit_failure;
        }
        // The control thread publishes with rcu_assign_pointer and never reads under RCU; it is
        // registered (so that a stray read-side use would be legal) and stays offline.
        rcu_register_thread();
        rcu_thread_offline();
        rcu_registered_ = true;
        gp_ = std::make_unique<rcu_grace_periods>();
        if (!gp_->realtime_helper()) {
            log::warning("the grace-period helper runs at normal priority (SCHED_FIFO needs "
                         "CAP_SYS_NICE): a grace period may wait milliseconds for the control "
                         "thread's time slice");
        }
        plane_ = std::make_unique<control_plane>(
            cfg_, *gp_, pool_, workers,
            [this](std::function<void()> fn) { loop_.post(std::move(fn)); });
        // Workers run from the start: they poll what the plane publishes to them.
        if (!launch_workers(workers)) {
            return exit_failure;
        }
        watch_events();
        plane_->start();
        reloads_ = std::make_unique<reload_path>(cfg_.source, *plane_);
        snapshot_.set(plane_->snapshot(true));
        if (!serve()) {
            return exit_failure;
        }
        const auto snap = plane_->snapshot(false);
        log::notice("forwarding: {} connections, {} calls, {} parties on {} worker(s){}",
                    plane_->state().connections().size(), snap->calls, snap->parties, workers,
                    cfg_.metrics.enabled
                        ? fmt::format("; metrics on http://{}/metrics", cfg_.metrics.listen)
                        : std::string());
        return exit_ok;
    }

    // One mbuf pool for every configured port and the spare ones; false (logged) when the
    // memory is not there.
    bool make_pool(unsigned workers) {
        std::vector<port_plan> plans;
        for (const auto& c : cfg_.connections) {
            plans.push_back(port_plan{0, c.name, uint16_t(workers), uint16_t(workers),
                                      c.rx_descriptors, c.tx_descriptors, c.mtu});
        }
        for (unsigned i = 0; i < spare_ports; ++i) {
            plans.push_back(
                port_plan{0, "spare", uint16_t(workers), uint16_t(workers), 1024, 1024, 1500});
        }
        try {
            const pool_plan pp = plan_mbuf_pool(plans, workers, unsigned(cfg_.eal.lcores.size()));
            pool_ = create_mbuf_pool("vcplane_mbufs", pp,
                                     int(rte_lcore_to_socket_id(cfg_.eal.lcores[1])));
            log::info("mbuf pool: {} buffers of {} bytes", pp.mbufs, pp.data_room);
            return true;
        } catch (const std::exception& e) {
            log::error("{}", e.what());
            return false;
        }
    }

    bool launch_workers(unsigned workers) {
        launch_.resize(workers);
        for (unsigned i = 0; i < workers; ++i) {
            launch_[i] = launch_args{plane_->workers()[i].get(), &stop_flag_};
            const unsigned lcore = cfg_.eal.lcores[i + 1];
            if (int rc = rte_eal_remote_launch(worker_lcore_main, &launch_[i], lcore); rc != 0) {
                log::error("cannot launch worker {} on lcore {}: {}", i, lcore, rte_strerror(-rc));
                return false;
            }
            launched_ = true;
        }
        return true;
    }

    // What the control thread's loop serves besides the sockets: completed grace periods,
    // device events, the snapshot when idle, and the once-a-second tick.
    void watch_events() {
        events_ = std::make_unique<device_events>();
        loop_.watch(gp_->event_fd(), [this](uint32_t) { gp_->run_completed(); });
        loop_.watch(events_->event_fd(), [this](uint32_t) {
            for (const auto& e : events_->take()) {
                plane_->handle(e);
            }
        });
        loop_.set_idle_hook([this] {
            plane_->flush();
            publish_snapshot(false);
        });
        timer_fd_ = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        itimerspec every_second{{1, 0}, {1, 0}};
        timerfd_settime(timer_fd_, 0, &every_second, nullptr);
        loop_.watch(timer_fd_, [this](uint32_t) {
            uint64_t n;
            [[maybe_unused]] ssize_t rc = read(timer_fd_, &n, sizeof(n));
            plane_->tick();
            publish_snapshot(true);
        });
    }

    // The metrics endpoint and the control socket, as the config asks; false (logged) when
    // either cannot listen.
    bool serve() {
        try {
            if (cfg_.metrics.enabled) {
                metrics_ = std::make_unique<metrics_server>(
                    cfg_.metrics.listen, std::make_shared<dataplane_metrics>(
                                             plane_->workers(), plane_->state().vc_slots(),
                                             plane_->state().party_slots(), snapshot_));
            }
            if (cfg_.control.enabled) {
                server_ =
                    std::make_unique<control_server>(cfg_.control, loop_, *plane_, reloads_.get());
            }
        } catch (const std::exception& e) {
            log::error("{}", e.what());
            return false;
        }
        return true;
    }

    // Teardown in dependency order: nothing is freed while something that reads it runs.
    void stop() noexcept {
        metrics_.reset(); // the scrape thread reads the workers' counters
        if (server_) {
            // Every session runs down while the call managers and workers still run.
            server_->close_all([this] { loop_.run_once(100); });
            server_.reset();
        }
        if (plane_) {
            loop_.set_idle_hook([this] { plane_->flush(); });
            // Calls close through their call managers while the workers still run, so that
            // grace periods complete and every completion is delivered.
            plane_->stop([this] { loop_.run_once(100); });
        }
        if (launched_) {
            stop_flag_.store(true, std::memory_order_relaxed);
            rte_eal_mp_wait_lcore();
            launched_ = false;
        }
        if (timer_fd_ >= 0) {
            loop_.unwatch(timer_fd_);
            close(timer_fd_);
            timer_fd_ = -1;
        }
        if (events_) {
            loop_.unwatch(events_->event_fd());
            events_.reset();
        }
        loop_.set_idle_hook(nullptr);
        plane_.reset(); // frees the tables: no worker runs any more
        if (gp_) {
            loop_.unwatch(gp_->event_fd());
            gp_.reset(); // waits for grace periods in flight and runs what is left
        }
        if (rcu_registered_) {
            rcu_unregister_thread();
            rcu_registered_ = false;
        }
        if (pool_ != nullptr) {
            rte_mempool_free(pool_);
            pool_ = nullptr;
        }
    }

    // SIGHUP: the one reload path (daemon/reload.hh), then a fresh snapshot for the scrape.
    void reload() {
        reloads_->run(false, std::nullopt);
        publish_snapshot(false);
    }

private:
    void publish_snapshot(bool with_ethdev) {
        auto snap = plane_->snapshot(with_ethdev);
        if (server_) {
            snap->sessions = server_->sessions();
            snap->lookups = plane_->names().lookups();
            snap->services = plane_->names().services();
        }
        for (const auto& l : gp_->take_latencies()) {
            grace_periods_.observe(l.completed);
        }
        snap->grace_periods = grace_periods_;
        snap->config_source = cfg_.source;
        if (with_ethdev || !contract_outcomes_) {
            contract_outcomes_ =
                std::make_shared<const contract_stats::table>(contract_stats::process().all());
        }
        snap->contract_outcomes = contract_outcomes_;
        const auto& reloads = reloads_->outcomes();
        snap->reloads_applied = reloads.applied;
        snap->reloads_partial = reloads.partial;
        snap->reloads_invalid = reloads.invalid;
        snap->last_reload_unix = reloads.last_unix;
        snapshot_.set(std::move(snap));
        if (with_ethdev) {
            // The snapshot just set lists no object gone before it was built: their counter
            // slots may be recycled once no scrape still reads the previous list.
            auto hold = snapshot_.hold_series();
            plane_->release_retired_counter_slots();
        }
    }

    latency_histogram grace_periods_;
    std::shared_ptr<const contract_stats::table> contract_outcomes_;

    const vcplane_config& cfg_;
    event_loop& loop_;
    rte_mempool* pool_ = nullptr;
    bool rcu_registered_ = false;
    std::unique_ptr<rcu_grace_periods> gp_;
    std::unique_ptr<control_plane> plane_;
    std::unique_ptr<device_events> events_;
    std::vector<launch_args> launch_;
    std::atomic<bool> stop_flag_{false};
    bool launched_ = false;
    int timer_fd_ = -1;
    snapshot_cell snapshot_;
    std::unique_ptr<metrics_server> metrics_;
    std::unique_ptr<reload_path> reloads_;
    std::unique_ptr<control_server> server_; // after reloads_: it serves the reload request
};

} // namespace

namespace {

// Logs every preflight finding; false when one is fatal.
bool preflight_passes(const vcplane_config& cfg) {
    const auto findings = preflight_host(cfg);
    for (const auto& f : findings) {
        using sev = preflight_finding::severity;
        if (f.level == sev::fatal) {
            log::error("{}", f.line());
        } else if (f.level == sev::warning) {
            log::warning("{}", f.line());
        } else {
            log::notice("{}", f.line());
        }
    }
    return !has_fatal(findings);
}

} // namespace

int run_preflight(const vcplane_config& cfg) {
    if (!preflight_passes(cfg)) {
        log::error("not ready: fix the preflight errors above");
        return exit_failure;
    }
    log::notice("ready: this host has what the file needs to start");
    return exit_ok;
}

int run_daemon(const vcplane_config& cfg, const std::string& program) {
    if (!preflight_passes(cfg)) {
        log::error("not starting: fix the preflight errors above");
        return exit_failure;
    }
    try {
        eal_start(eal_arguments(cfg.eal, program));
    } catch (const std::exception& e) {
        log::error("{}", e.what());
        return exit_failure;
    }
    int status = exit_ok;
    {
        event_loop loop;
        running_switch sw(cfg, loop);
        status = sw.start();
        if (status == exit_ok) {
            sigset_t set;
            sigemptyset(&set);
            sigaddset(&set, SIGTERM);
            sigaddset(&set, SIGINT);
            sigaddset(&set, SIGHUP);
            const int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
            loop.watch(sfd, [&](uint32_t) {
                signalfd_siginfo si{};
                while (read(sfd, &si, sizeof(si)) == ssize_t(sizeof(si))) {
                    if (si.ssi_signo == SIGHUP) {
                        log::notice("SIGHUP: reloading {}", cfg.source);
                        sw.reload();
                        continue;
                    }
                    log::notice("{}: stopping", si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
                    loop.stop();
                }
            });
            loop.run();
            loop.unwatch(sfd);
            close(sfd);
        }
        sw.stop();
    }
    eal_stop();
    log::notice("stopped");
    return status;
}

} // namespace vcplane
