#include "control/metrics.hh"

#include <fmt/format.h>
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
                                     const switch_state& state)
    : workers_(workers)
    , state_(state)
    , tsc_hz_(double(rte_get_tsc_hz())) {}

std::vector<prometheus::MetricFamily> dataplane_metrics::Collect() const {
    using prometheus::MetricType;
    auto info = family("vcplane_build_info", "Version of the running vcplaned.", MetricType::Gauge);
    add_gauge(info, {{"version", VCPLANE_VERSION}}, 1);

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

    for (const auto& c : state_.connections()) {
        uint64_t rp = 0, rb = 0, tp = 0, tb = 0;
        for (const auto& w : workers_) {
            const port_counters& pc = w->counters().port[c.port];
            rp += pc.rx_packets.read();
            rb += pc.rx_bytes.read();
            tp += pc.tx_packets.read();
            tb += pc.tx_bytes.read();
        }
        std::vector<prometheus::ClientMetric::Label> labels{{"connection", c.name},
                                                            {"device", c.device}};
        add_counter(rx_packets, labels, double(rp));
        add_counter(rx_bytes, labels, double(rb));
        add_counter(tx_packets, labels, double(tp));
        add_counter(tx_bytes, labels, double(tb));
        rte_eth_stats st{};
        if (rte_eth_stats_get(c.port, &st) == 0) {
            add_counter(rx_missed, labels, double(st.imissed));
            add_counter(rx_errors, labels, double(st.ierrors));
            add_counter(tx_errors, labels, double(st.oerrors));
            add_counter(rx_nombuf, labels, double(st.rx_nombuf));
        }
        rte_eth_link link{};
        if (rte_eth_link_get_nowait(c.port, &link) == 0) {
            add_gauge(link_up, labels, link.link_status == RTE_ETH_LINK_UP ? 1 : 0);
        }
    }

    auto drops = family("vcplane_dropped_packets_total", "Frames the workers dropped, by reason.",
                        MetricType::Counter);
    for (size_t r = 0; r < drop_reason_count; ++r) {
        uint64_t n = 0;
        for (const auto& w : workers_) {
            n += w->counters().drops[r].read();
        }
        add_counter(drops, {{"reason", drop_reason_name(drop_reason(r))}}, double(n));
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

    auto objects = family("vcplane_objects", "Provisioned objects, by kind.", MetricType::Gauge);
    add_gauge(objects, {{"kind", "connection"}}, double(state_.connections().size()));
    add_gauge(objects, {{"kind", "call"}}, double(state_.calls().size()));
    add_gauge(objects, {{"kind", "party"}}, double(state_.party_count()));

    return {std::move(info),       std::move(rx_packets), std::move(rx_bytes),
            std::move(tx_packets), std::move(tx_bytes),   std::move(rx_missed),
            std::move(rx_errors),  std::move(tx_errors),  std::move(rx_nombuf),
            std::move(link_up),    std::move(drops),      std::move(busy),
            std::move(idle),       std::move(objects)};
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
