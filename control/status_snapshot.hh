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

#include "base/contract_stats.hh"
#include "contracts/nmr/nmr.hh"

namespace vcplane {

struct port_xstat {
    std::string name; // the driver's name for it
    uint64_t value;
};

struct port_snapshot {
    std::string connection; // empty: unmanaged
    std::string device;
    uint16_t port = 0;
    std::string state;  // connection state, or "unmanaged"
    std::string reason; // why unmanaged
    bool link_up = false;
    uint64_t rx_missed = 0, rx_errors = 0, tx_errors = 0, rx_nombuf = 0;
    std::vector<port_xstat> xstats; // the driver's extended statistics
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

// The per-VC and per-party series a scrape reports (opt-in, [metrics] per_vc / per_party):
// each names the counter slot it sums (dataplane/counter_slots.hh). Objects counted in the
// remainder slot are not listed; the remainder is reported as one series without labels.
struct traffic_series {
    std::string connection; // the call's ingress connection
    std::string call;
    uint32_t key = 0;   // a VC's in-label/VID; a party's out-label/VID
    std::string party;  // parties only
    std::string egress; // parties only: the connection the copies leave through
    uint32_t slot = 0;
    const char* action = ""; // parties only: party_action_name
};
struct traffic_series_list {
    std::vector<traffic_series> vcs, parties;
    // Objects alive in the remainder now, and ever given no series of their own.
    uint64_t vcs_in_remainder = 0, parties_in_remainder = 0;
    uint64_t vcs_suppressed_total = 0, parties_suppressed_total = 0;
};

struct status_snapshot {
    std::vector<port_snapshot> ports;
    size_t calls = 0;
    size_t parties = 0;
    size_t calls_waiting = 0;
    size_t file_leaving = 0; // parties and calls the file no longer names, not yet removed
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
    std::shared_ptr<const contract_stats::table> contract_outcomes;
    // Rebuilt with the ethdev readings too (at most once a second).
    std::shared_ptr<const traffic_series_list> series;
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
    // Held by a scrape while it reads the counter slots its snapshot's series name, and by
    // the control thread while it releases slots (after set() of a snapshot that no longer
    // lists them): a scrape never reads a slot that was recycled under its series.
    std::unique_lock<std::mutex> hold_series() const {
        return std::unique_lock<std::mutex>(series_lock_);
    }

private:
    mutable std::mutex series_lock_;
    mutable std::mutex lock_;
    std::shared_ptr<const status_snapshot> current_;
};

} // namespace vcplane
