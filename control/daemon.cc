#include "control/daemon.hh"

#include <atomic>
#include <csignal>
#include <memory>
#include <optional>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "control/event_loop.hh"
#include "control/log.hh"
#include "control/metrics.hh"
#include "control/switch_state.hh"
#include "dataplane/worker.hh"
#include "port/eal.hh"
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

struct claimed_port {
    const connection_config* config;
    uint16_t port;
};

// Finds the port of every connection. Reports every connection whose port is missing, each
// with the key that names it, and returns nullopt if any is.
std::optional<std::vector<claimed_port>> resolve_ports(const vcplane_config& cfg) {
    std::vector<claimed_port> out;
    bool ok = true;
    for (const auto& c : cfg.connections) {
        std::optional<uint16_t> p =
            c.mac ? find_port_by_mac(*c.mac) : find_port_by_device(c.device);
        if (!p) {
            const std::string what =
                c.mac ? fmt::format("no DPDK port has MAC {}", format_mac(*c.mac))
                      : fmt::format("no DPDK port named '{}'", c.device);
            log::error("{}: {} (ports present: {}); fix: add it to eal.vdevs or eal.pci_allow "
                       "(bound to vfio-pci), or correct the name",
                       c.device_origin.where(), what, port_list());
            ok = false;
            continue;
        }
        out.push_back({&c, *p});
    }
    if (!ok) {
        return std::nullopt;
    }
    for (uint16_t p : present_ports()) {
        bool claimed = false;
        for (const auto& c : out) {
            claimed = claimed || c.port == p;
        }
        if (!claimed) {
            log::notice("port {} ({}): unmanaged: no connection in the config claims it",
                        port_device_name(p), format_mac(port_mac(p)));
        }
    }
    return out;
}

void warn_numa(const std::vector<claimed_port>& ports, const std::vector<unsigned>& lcores) {
    for (const auto& c : ports) {
        const int port_socket = rte_eth_dev_socket_id(c.port);
        if (port_socket < 0) {
            continue;
        }
        for (size_t i = 1; i < lcores.size(); ++i) {
            const int s = int(rte_lcore_to_socket_id(lcores[i]));
            if (s != port_socket) {
                log::warning("preflight warning: connection '{}' sits on NUMA node {} but worker "
                             "lcore {} on node {}: every frame crosses the interconnect; fix: "
                             "choose worker lcores on node {}",
                             c.config->name, port_socket, lcores[i], s, port_socket);
            }
        }
    }
}

class running_switch {
public:
    ~running_switch() { stop(); }

    int start(const vcplane_config& cfg) {
        auto resolved = resolve_ports(cfg);
        if (!resolved) {
            return exit_failure;
        }
        warn_numa(*resolved, cfg.eal.lcores);
        const unsigned workers = unsigned(cfg.eal.lcores.size() - 1);
        std::vector<port_plan> plans;
        for (const auto& c : *resolved) {
            plans.push_back(port_plan{c.port, c.config->name, uint16_t(workers), uint16_t(workers),
                                      c.config->rx_descriptors, c.config->tx_descriptors,
                                      c.config->mtu});
        }
        try {
            const pool_plan pp = plan_mbuf_pool(plans, workers, unsigned(cfg.eal.lcores.size()));
            pool_ = create_mbuf_pool("vcplane_mbufs", pp,
                                     int(rte_lcore_to_socket_id(cfg.eal.lcores[1])));
            log::info("mbuf pool: {} buffers of {} bytes", pp.mbufs, pp.data_room);
            for (const auto& plan : plans) {
                start_port(plan, pool_);
                started_.push_back(plan.port);
            }
            for (const auto& c : *resolved) {
                state_.add_connection(c.config->name, port_device_name(c.port), c.port,
                                      c.config->media, port_mac(c.port), c.config->mtu);
            }
            for (const auto& call : cfg.calls) {
                state_.make_call(call);
            }
        } catch (const std::exception& e) {
            log::error("{}", e.what());
            return exit_failure;
        }
        for (unsigned i = 0; i < workers; ++i) {
            auto w = std::make_unique<worker>(i, state_.table(), pool_, uint16_t(i));
            for (const auto& c : *resolved) {
                w->add_rx_queue(c.port, uint16_t(i));
            }
            workers_.push_back(std::move(w));
        }
        launch_.resize(workers);
        for (unsigned i = 0; i < workers; ++i) {
            launch_[i] = launch_args{workers_[i].get(), &stop_flag_};
            const unsigned lcore = cfg.eal.lcores[i + 1];
            if (int rc = rte_eal_remote_launch(worker_lcore_main, &launch_[i], lcore); rc != 0) {
                log::error("cannot launch worker {} on lcore {}: {}", i, lcore, rte_strerror(-rc));
                return exit_failure;
            }
        }
        launched_ = true;
        if (cfg.metrics.enabled) {
            try {
                metrics_ = std::make_unique<metrics_server>(
                    cfg.metrics.listen, std::make_shared<dataplane_metrics>(workers_, state_));
            } catch (const std::exception& e) {
                log::error("{}", e.what());
                return exit_failure;
            }
        }
        log::notice(
            "forwarding: {} connections, {} calls, {} parties on {} worker(s){}",
            state_.connections().size(), state_.calls().size(), state_.party_count(), workers,
            cfg.metrics.enabled ? fmt::format("; metrics on http://{}/metrics", cfg.metrics.listen)
                                : std::string());
        return exit_ok;
    }

    // Teardown in dependency order: nothing may be freed while something that reads it runs.
    void stop() noexcept {
        metrics_.reset(); // the scrape thread reads workers and state
        if (launched_) {
            stop_flag_.store(true, std::memory_order_relaxed);
            rte_eal_mp_wait_lcore();
            launched_ = false;
        }
        workers_.clear(); // frees frames left in TX buffers
        for (uint16_t p : started_) {
            stop_port(p);
        }
        started_.clear();
        // state_ (the tables) is freed by its destructor: no worker runs any more.
        if (pool_ != nullptr) {
            rte_mempool_free(pool_);
            pool_ = nullptr;
        }
    }

private:
    rte_mempool* pool_ = nullptr;
    std::vector<uint16_t> started_;
    switch_state state_;
    std::vector<std::unique_ptr<worker>> workers_;
    std::vector<launch_args> launch_;
    std::atomic<bool> stop_flag_{false};
    bool launched_ = false;
    std::unique_ptr<metrics_server> metrics_;
};

} // namespace

int run_daemon(const vcplane_config& cfg, const std::string& program) {
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
    if (has_fatal(findings)) {
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
        running_switch sw;
        status = sw.start(cfg);
        if (status == exit_ok) {
            sigset_t set;
            sigemptyset(&set);
            sigaddset(&set, SIGTERM);
            sigaddset(&set, SIGINT);
            sigaddset(&set, SIGHUP);
            const int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
            event_loop loop;
            loop.watch(sfd, [&](uint32_t) {
                signalfd_siginfo si{};
                while (read(sfd, &si, sizeof(si)) == ssize_t(sizeof(si))) {
                    if (si.ssi_signo == SIGHUP) {
                        log::notice("SIGHUP: live reload is not in this version; the running "
                                    "configuration is unchanged");
                        continue;
                    }
                    log::notice("{}: stopping", si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
                    loop.stop();
                }
            });
            loop.run();
            close(sfd);
        }
        sw.stop();
    }
    eal_stop();
    log::notice("stopped");
    return status;
}

} // namespace vcplane
