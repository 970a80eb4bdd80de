#include "daemon/metrics.hh"

#include <fmt/format.h>
#include <limits>
#include <prometheus/metric_family.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <stdexcept>

#include "vcplane_version.hh"

namespace vcplane {

namespace {

prometheus::MetricFamily family(const char* name, const char* help, prometheus::MetricType type) {
    prometheus::MetricFamily f;
    f.name = name;
    f.help = help;
    f.type = type;
    return f;
}

void add_counter(prometheus::MetricFamily& f, std::vector<prometheus::ClientMetric::Label> labels,
                 double value) {
    prometheus::ClientMetric m;
    m.label = std::move(labels);
    m.counter.value = value;
    f.metric.push_back(std::move(m));
}

void add_gauge(prometheus::MetricFamily& f, std::vector<prometheus::ClientMetric::Label> labels,
               double value) {
    prometheus::ClientMetric m;
    m.label = std::move(labels);
    m.gauge.value = value;
    f.metric.push_back(std::move(m));
}

} // namespace

dataplane_metrics::dataplane_metrics(const std::vector<std::unique_ptr<worker>>& workers,
                                     const counter_slots& vc_slots,
                                     const counter_slots& party_slots, const snapshot_cell& status)
    : workers_(workers)
    , vc_slots_(vc_slots)
    , party_slots_(party_slots)
    , status_(status)
    , tsc_hz_(double(rte_get_tsc_hz())) {}

std::vector<prometheus::MetricFamily> dataplane_metrics::Collect() const {
    // One snapshot for the whole scrape, taken under the series hold: the per-VC and per-party
    // series it lists name no slot released since it was set (control/status_snapshot.hh).
    const auto hold = status_.hold_series();
    const auto snap = status_.get();
    std::vector<prometheus::MetricFamily> out;
    collect_ports(*snap, out);
    collect_latency(*snap, out);
    collect_xstats(*snap, out);
    collect_workers(out);
    collect_objects(*snap, out);
    collect_reloads(*snap, out);
    collect_contracts(*snap, out);
    if (snap->series) {
        collect_series(*snap->series, out);
    }
    return out;
}

// Per port: what the workers moved, the ethdev counters and link, the driver's xstats.
void dataplane_metrics::collect_ports(const status_snapshot& snap,
                                      std::vector<prometheus::MetricFamily>& out) const {
    using prometheus::MetricType;
    auto rx_packets = family("vcplane_port_rx_packets_total",
                             "Frames the workers received on the port.", MetricType::Counter);
    auto rx_bytes = family("vcplane_port_rx_bytes_total",
                           "Bytes (Ethernet frame without FCS) the workers received on the port.",
                           MetricType::Counter);
    auto tx_packets =
        family("vcplane_port_tx_packets_total",
               "Frames the workers handed to the port and it accepted.", MetricType::Counter);
    auto tx_bytes = family("vcplane_port_tx_bytes_total",
                           "Bytes (Ethernet frame without FCS) the port accepted for transmission.",
                           MetricType::Counter);
    auto rx_missed =
        family("vcplane_port_rx_missed_total",
               "Frames the port dropped because its RX queues were full (ethdev imissed).",
               MetricType::Counter);
    auto rx_errors =
        family("vcplane_port_rx_errors_total",
               "Erroneous frames the port received (ethdev ierrors).", MetricType::Counter);
    auto tx_errors =
        family("vcplane_port_tx_errors_total",
               "Frames the port failed to transmit (ethdev oerrors).", MetricType::Counter);
    auto rx_nombuf = family("vcplane_port_rx_nombuf_total",
                            "RX buffer allocation failures of the port (ethdev rx_nombuf).",
                            MetricType::Counter);
    auto link_up =
        family("vcplane_port_link_up", "1 when the port's link is up.", MetricType::Gauge);

    auto port_state =
        family("vcplane_port_info",
               "Every DPDK port with its connection (empty when unmanaged) and state; value 1.",
               MetricType::Gauge);
    for (const auto& p : snap.ports) {
        add_gauge(port_state,
                  {{"connection", p.connection}, {"device", p.device}, {"state", p.state}}, 1);
        if (p.connection.empty()) {
            continue;
        }
        const port_totals t = sum_port_counters(workers_, p.port);
        std::vector<prometheus::ClientMetric::Label> labels{{"connection", p.connection},
                                                            {"device", p.device}};
        add_counter(rx_packets, labels, double(t.rx_packets));
        add_counter(rx_bytes, labels, double(t.rx_bytes));
        add_counter(tx_packets, labels, double(t.tx_packets));
        add_counter(tx_bytes, labels, double(t.tx_bytes));
        add_counter(rx_missed, labels, double(p.rx_missed));
        add_counter(rx_errors, labels, double(p.rx_errors));
        add_counter(tx_errors, labels, double(p.tx_errors));
        add_counter(rx_nombuf, labels, double(p.rx_nombuf));
        add_gauge(link_up, labels, p.link_up ? 1 : 0);
    }

    out.push_back(std::move(rx_packets));
    out.push_back(std::move(rx_bytes));
    out.push_back(std::move(tx_packets));
    out.push_back(std::move(tx_bytes));
    out.push_back(std::move(rx_missed));
    out.push_back(std::move(rx_errors));
    out.push_back(std::move(tx_errors));
    out.push_back(std::move(rx_nombuf));
    out.push_back(std::move(link_up));
    out.push_back(std::move(port_state));
}

// The sampled forwarding latency per connection (metrics.forwarding_latency), when on.
void dataplane_metrics::collect_latency(const status_snapshot& snap,
                                        std::vector<prometheus::MetricFamily>& out) const {
    using prometheus::MetricType;
    if (workers_.empty() || workers_.front()->latency() == nullptr) {
        return;
    }
    auto latency = family("vcplane_forwarding_latency_seconds",
                          "Sampled time from a burst's receive on the connection to the end of "
                          "the pass that handed its copies to their ports (one burst in 1024 "
                          "frames per worker; metrics.forwarding_latency).",
                          MetricType::Histogram);
    for (const auto& p : snap.ports) {
        if (p.connection.empty()) {
            continue;
        }
        prometheus::ClientMetric m;
        m.label = {{"connection", p.connection}, {"device", p.device}};
        uint64_t cumulative = 0, cycles = 0;
        for (size_t i = 0; i <= latency_bounds_seconds.size(); ++i) {
            for (const auto& w : workers_) {
                cumulative += w->latency()->ports[p.port].buckets[i].read();
            }
            prometheus::ClientMetric::Bucket b;
            b.upper_bound = i < latency_bounds_seconds.size()
                                ? latency_bounds_seconds[i]
                                : std::numeric_limits<double>::infinity();
            b.cumulative_count = cumulative;
            m.histogram.bucket.push_back(b);
        }
        for (const auto& w : workers_) {
            cycles += w->latency()->ports[p.port].sum_cycles.read();
        }
        m.histogram.sample_count = cumulative;
        m.histogram.sample_sum = double(cycles) / tsc_hz_;
        latency.metric.push_back(std::move(m));
    }
    out.push_back(std::move(latency));
}

// The port drivers' extended statistics.
void dataplane_metrics::collect_xstats(const status_snapshot& snap,
                                       std::vector<prometheus::MetricFamily>& out) const {
    using prometheus::MetricType;
    auto xstats = family("vcplane_port_xstats_total",
                         "The port driver's extended statistics (ethdev xstats), by the driver's "
                         "name for each; read once a second.",
                         MetricType::Counter);
    for (const auto& p : snap.ports) {
        for (const auto& x : p.xstats) {
            add_counter(xstats,
                        {{"connection", p.connection}, {"device", p.device}, {"name", x.name}},
                        double(x.value));
        }
    }
    out.push_back(std::move(xstats));
}

// Per worker: drops by reason (summed), busy and idle time.
void dataplane_metrics::collect_workers(std::vector<prometheus::MetricFamily>& out) const {
    using prometheus::MetricType;
    auto drops = family("vcplane_dropped_packets_total", "Frames the workers dropped, by reason.",
                        MetricType::Counter);
    for (size_t r = 0; r < drop_reason_count; ++r) {
        add_counter(drops, {{"reason", drop_reason_name(drop_reason(r))}},
                    double(sum_drops(workers_, drop_reason(r))));
    }

    auto busy =
        family("vcplane_worker_busy_seconds_total",
               "Time the worker spent in polling loops that moved packets.", MetricType::Counter);
    auto idle =
        family("vcplane_worker_idle_seconds_total",
               "Time the worker spent in polling loops that found nothing.", MetricType::Counter);
    for (const auto& w : workers_) {
        std::vector<prometheus::ClientMetric::Label> labels{{"worker", std::to_string(w->id())}};
        add_counter(busy, labels, double(w->counters().busy_cycles.read()) / tsc_hz_);
        add_counter(idle, labels, double(w->counters().idle_cycles.read()) / tsc_hz_);
    }

    out.push_back(std::move(drops));
    out.push_back(std::move(busy));
    out.push_back(std::move(idle));
}

// The control plane's own state: the build, objects, NMR, grace periods, reloads, contract
// outcomes.
// What lives in the control plane: objects by kind, NMR registrations, deferred operations, the
// build and the configuration.
void dataplane_metrics::collect_objects(const status_snapshot& snap,
                                        std::vector<prometheus::MetricFamily>& out) const {
    using prometheus::MetricType;
    auto info = family("vcplane_build_info", "Version of the running vcplaned.", MetricType::Gauge);
    add_gauge(info, {{"version", VCPLANE_VERSION}}, 1);

    auto objects = family("vcplane_objects", "Live objects, by kind.", MetricType::Gauge);
    size_t connections = 0;
    for (const auto& p : snap.ports) {
        connections += !p.connection.empty();
    }
    add_gauge(objects, {{"kind", "connection"}}, double(connections));
    add_gauge(objects, {{"kind", "unmanaged_port"}}, double(snap.ports.size() - connections));
    add_gauge(objects, {{"kind", "call"}}, double(snap.calls));
    add_gauge(objects, {{"kind", "party"}}, double(snap.parties));
    add_gauge(objects, {{"kind", "call_waiting"}}, double(snap.calls_waiting));
    add_gauge(objects, {{"kind", "leaving"}}, double(snap.file_leaving));
    add_gauge(objects, {{"kind", "session"}}, double(snap.sessions));
    add_gauge(objects, {{"kind", "lookup"}}, double(snap.lookups));
    add_gauge(objects, {{"kind", "service"}}, double(snap.services));

    auto nmr_family = family("vcplane_nmr_registrations",
                             "NMR registrations and bindings of the call-management NPI, by state.",
                             MetricType::Gauge);
    add_gauge(nmr_family, {{"object", "client"}, {"state", "registered"}},
              double(snap.nmr.clients));
    add_gauge(nmr_family, {{"object", "provider"}, {"state", "registered"}},
              double(snap.nmr.providers));
    add_gauge(nmr_family, {{"object", "registration"}, {"state", "deregistering"}},
              double(snap.nmr.deregistering));
    add_gauge(nmr_family, {{"object", "binding"}, {"state", "attached"}},
              double(snap.nmr.attached));
    add_gauge(nmr_family, {{"object", "binding"}, {"state", "detaching"}},
              double(snap.nmr.detaching));
    auto pending =
        family("vcplane_grace_period_pending_operations",
               "Deferred operations waiting for an RCU grace period.", MetricType::Gauge);
    add_gauge(pending, {}, double(snap.grace_pending));

    auto config_info = family("vcplane_config_info",
                              "The configuration the switch runs: its file and worker count; "
                              "value 1.",
                              MetricType::Gauge);
    add_gauge(config_info,
              {{"source", snap.config_source}, {"workers", std::to_string(workers_.size())}}, 1);

    out.push_back(std::move(info));
    out.push_back(std::move(objects));
    out.push_back(std::move(nmr_family));
    out.push_back(std::move(pending));
    out.push_back(std::move(config_info));
}

void dataplane_metrics::collect_reloads(const status_snapshot& snap,
                                        std::vector<prometheus::MetricFamily>& out) const {
    using prometheus::MetricType;
    auto reloads = family("vcplane_config_reloads_total",
                          "Config reloads (SIGHUP, vcplanectl reload) by result: applied, partial "
                          "(a step failed), invalid (the file was refused, nothing changed).",
                          MetricType::Counter);
    add_counter(reloads, {{"result", "applied"}}, double(snap.reloads_applied));
    add_counter(reloads, {{"result", "partial"}}, double(snap.reloads_partial));
    add_counter(reloads, {{"result", "invalid"}}, double(snap.reloads_invalid));
    auto last_reload =
        family("vcplane_config_last_reload_timestamp_seconds",
               "Unix time of the last reload attempt; 0 before the first.", MetricType::Gauge);
    add_gauge(last_reload, {}, snap.last_reload_unix);

    out.push_back(std::move(reloads));
    out.push_back(std::move(last_reload));
}

// Grace periods and the outcome of every contract operation.
void dataplane_metrics::collect_contracts(const status_snapshot& snap,
                                          std::vector<prometheus::MetricFamily>& out) const {
    using prometheus::MetricType;
    auto grace = family("vcplane_grace_period_seconds",
                        "Time from the start of an RCU grace period (a batch of deferred frees and "
                        "contract completions) to its end.",
                        MetricType::Histogram);
    {
        prometheus::ClientMetric m;
        m.histogram.sample_count = snap.grace_periods.count;
        m.histogram.sample_sum = snap.grace_periods.sum;
        for (size_t i = 0; i < latency_histogram::bounds.size(); ++i) {
            prometheus::ClientMetric::Bucket b;
            b.upper_bound = latency_histogram::bounds[i];
            b.cumulative_count = snap.grace_periods.le[i];
            m.histogram.bucket.push_back(b);
        }
        prometheus::ClientMetric::Bucket inf;
        inf.upper_bound = std::numeric_limits<double>::infinity();
        inf.cumulative_count = snap.grace_periods.count;
        m.histogram.bucket.push_back(inf);
        grace.metric.push_back(std::move(m));
    }
    auto outcomes = family("vcplane_contract_operations_total",
                           "Contract operations by family (ndis: call management, nsp: sessions "
                           "and names, cm: connection manager, nmr: module registrar), operation "
                           "and the status they returned.",
                           MetricType::Counter);
    if (snap.contract_outcomes) {
        for (const auto& [k, n] : *snap.contract_outcomes) {
            add_counter(outcomes,
                        {{"family", std::get<0>(k)},
                         {"operation", std::get<1>(k)},
                         {"status", std::get<2>(k)}},
                        double(n));
        }
    }

    out.push_back(std::move(grace));
    out.push_back(std::move(outcomes));
}

void dataplane_metrics::collect_series(const traffic_series_list& list,
                                       std::vector<prometheus::MetricFamily>& out) const {
    using prometheus::MetricType;
    auto suppressed = family("vcplane_metrics_suppressed_series",
                             "VCs or parties alive now that have no series of their own "
                             "(metrics.max_series reached): their traffic is in the series "
                             "without labels.",
                             MetricType::Gauge);
    auto suppressed_total =
        family("vcplane_metrics_suppressed_series_total",
               "VCs or parties that were given no series of their own since the start.",
               MetricType::Counter);

    struct kind {
        const char* name;
        const counter_slots& slots;
        const std::vector<traffic_series>& series;
        uint64_t in_remainder, suppressed_total;
        const char *packets_name, *packets_help, *bytes_name, *bytes_help, *drops_name, *drops_help;
    };
    const kind kinds[] = {
        {"vc", vc_slots_, list.vcs, list.vcs_in_remainder, list.vcs_suppressed_total,
         "vcplane_vc_packets_total", "Frames classified to the VC.", "vcplane_vc_bytes_total",
         "Bytes (Ethernet frame without FCS) classified to the VC.",
         "vcplane_vc_dropped_packets_total",
         "Frames or copies of the VC dropped after classification (TTL expired, policed, no "
         "buffer for a copy)."},
        {"party", party_slots_, list.parties, list.parties_in_remainder,
         list.parties_suppressed_total, "vcplane_party_packets_total", "Copies sent to the party.",
         "vcplane_party_bytes_total",
         "Bytes (Ethernet frame without FCS) of the copies sent to the party.",
         "vcplane_party_dropped_packets_total",
         "Copies for the party lost for want of a buffer, or that its action could not make "
         "(dropped_packets_total says why)."},
    };
    bool any = false;
    for (const kind& k : kinds) {
        if (!k.slots.counting()) {
            continue;
        }
        any = true;
        const bool vc = &k == &kinds[0];
        auto packets = family(k.packets_name, k.packets_help, MetricType::Counter);
        auto bytes = family(k.bytes_name, k.bytes_help, MetricType::Counter);
        auto drops = family(k.drops_name, k.drops_help, MetricType::Counter);
        auto add = [&](std::vector<prometheus::ClientMetric::Label> labels, uint32_t slot) {
            const slot_totals t = k.slots.read(slot);
            add_counter(packets, labels, double(t.packets));
            add_counter(bytes, labels, double(t.bytes));
            add_counter(drops, std::move(labels), double(t.drops));
        };
        for (const auto& s : k.series) {
            if (vc) {
                add({{"connection", s.connection},
                     {"call", s.call},
                     {"key", std::to_string(s.key)}},
                    s.slot);
            } else {
                add({{"connection", s.connection},
                     {"call", s.call},
                     {"party", s.party},
                     {"egress", s.egress},
                     {"key", std::to_string(s.key)},
                     {"action", s.action}},
                    s.slot);
            }
        }
        add({}, counter_slots::remainder); // everything without a series of its own
        add_gauge(suppressed, {{"kind", k.name}}, double(k.in_remainder));
        add_counter(suppressed_total, {{"kind", k.name}}, double(k.suppressed_total));
        out.push_back(std::move(packets));
        out.push_back(std::move(bytes));
        out.push_back(std::move(drops));
    }
    if (any) {
        out.push_back(std::move(suppressed));
        out.push_back(std::move(suppressed_total));
    }
}

metrics_server::metrics_server(const std::string& listen,
                               std::shared_ptr<prometheus::Collectable> source)
    : source_(std::move(source)) {
    try {
        exposer_ = std::make_unique<prometheus::Exposer>(listen, 2);
    } catch (const std::exception& e) {
        throw std::runtime_error(
            fmt::format("metrics.listen: cannot listen on {}: {}", listen, e.what()));
    }
    exposer_->RegisterCollectable(source_);
}

metrics_server::~metrics_server() {
    // Stop the HTTP thread before anything Collect() reads goes away.
    exposer_.reset();
}

} // namespace vcplane
