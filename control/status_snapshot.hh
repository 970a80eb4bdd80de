#pragma once
// What the metrics scrape (another thread) may know about the control plane: a snapshot the
// control thread rebuilds after every loop iteration and on a one-second timer, swapped in
// under a mutex. The scrape never reads control-thread state or calls into ethdev itself.

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "control/contract_stats.hh"
#include "control/nmr.hh"

namespace vcplane {

struct port_snapshot {
    std::string connection; // empty: unmanaged
    std::string device;
    uint16_t port = 0;
    std::string state;  // connection state, or "unmanaged"
    std::string reason; // why unmanaged
    bool link_up = false;
    uint64_t rx_missed = 0, rx_errors = 0, tx_errors = 0, rx_nombuf = 0;
};

// Latencies with cumulative buckets (Prometheus histogram semantics), control thread only.
struct latency_histogram {
    static constexpr std::array<double, 14> bounds = {1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4,
                                                      2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 1e-1};
    std::array<uint64_t, bounds.size()> le{}; // observations <= bounds[i]
    uint64_t count = 0;
    double sum = 0;
    void observe(double seconds) {
        for (size_t i = 0; i < bounds.size(); ++i) {
            le[i] += seconds <= bounds[i];
        }
        ++count;
        sum += seconds;
    }
};

struct status_snapshot {
    std::vector<port_snapshot> ports;
    size_t calls = 0;
    size_t parties = 0;
    size_t calls_waiting = 0;
    nmr::registrar_counts nmr;
    size_t grace_pending = 0;
    size_t sessions = 0;
    size_t lookups = 0;
    size_t services = 0;
    // Reloads by result (applied: every step succeeded or waits; partial: a step failed;
    // invalid: the file was refused, nothing changed) and when the last one ran (Unix time).
    uint64_t reloads_applied = 0, reloads_partial = 0, reloads_invalid = 0;
    double last_reload_unix = 0;
    std::string config_source; // the file the switch runs (or "<embedded default>")
    latency_histogram grace_periods;
    // Refreshed with the ethdev readings (once a second), not at every loop iteration.
    std::shared_ptr<const std::map<contract_stats::key, uint64_t>> contract_outcomes;
};

class snapshot_cell {
public:
    void set(std::shared_ptr<const status_snapshot> s) {
        std::lock_guard<std::mutex> g(lock_);
        current_ = std::move(s);
    }
    std::shared_ptr<const status_snapshot> get() const {
        std::lock_guard<std::mutex> g(lock_);
        return current_ ? current_ : std::make_shared<const status_snapshot>();
    }

private:
    mutable std::mutex lock_;
    std::shared_ptr<const status_snapshot> current_;
};

} // namespace vcplane
