#pragma once
// Prometheus exposition. Families are computed at scrape time (a custom Collectable) by
// summing every worker's counters and reading ethdev stats: the worker path never does more
// than bump its own counters, and a scrape costs the workers nothing.
//
// Threading: Collect() runs on the exposer's HTTP thread. It reads worker counters (safe by
// construction, dataplane/counters.hh) and the status snapshot the control thread publishes
// (control/status_snapshot.hh); it never touches control-thread state or ethdev. Per-VC and
// per-party series sum the counter slots the snapshot names, under hold_series() so that no
// slot is recycled while it is read (dataplane/counter_slots.hh).

#include <memory>
#include <prometheus/collectable.h>
#include <prometheus/exposer.h>
#include <string>
#include <vector>

#include "control/status_snapshot.hh"
#include "dataplane/counter_slots.hh"
#include "dataplane/worker.hh"

namespace vcplane {

class dataplane_metrics : public prometheus::Collectable {
public:
    dataplane_metrics(const std::vector<std::unique_ptr<worker>>& workers,
                      const counter_slots& vc_slots, const counter_slots& party_slots,
                      const snapshot_cell& status);
    std::vector<prometheus::MetricFamily> Collect() const override;

private:
    void collect_ports(const status_snapshot& snap,
                       std::vector<prometheus::MetricFamily>& out) const;
    void collect_latency(const status_snapshot& snap,
                         std::vector<prometheus::MetricFamily>& out) const;
    void collect_xstats(const status_snapshot& snap,
                        std::vector<prometheus::MetricFamily>& out) const;
    void collect_workers(std::vector<prometheus::MetricFamily>& out) const;
    void collect_objects(const status_snapshot& snap,
                         std::vector<prometheus::MetricFamily>& out) const;
    void collect_reloads(const status_snapshot& snap,
                         std::vector<prometheus::MetricFamily>& out) const;
    void collect_contracts(const status_snapshot& snap,
                           std::vector<prometheus::MetricFamily>& out) const;
    void collect_series(const traffic_series_list& list,
                        std::vector<prometheus::MetricFamily>& out) const;

    const std::vector<std::unique_ptr<worker>>& workers_;
    const counter_slots& vc_slots_;
    const counter_slots& party_slots_;
    const snapshot_cell& status_;
    double tsc_hz_;
};

// The HTTP endpoint. Throws std::runtime_error with the address when it cannot listen.
class metrics_server {
public:
    metrics_server(const std::string& listen, std::shared_ptr<prometheus::Collectable> source);
    ~metrics_server();

private:
    std::shared_ptr<prometheus::Collectable> source_;
    std::unique_ptr<prometheus::Exposer> exposer_;
};

} // namespace vcplane
