#pragma once
// What the benchmarks in perf/ share: an EAL on two lcores (0: control, and the traffic source
// of the ring-fed benchmarks; 1: the measured core), in-process ring ports, a header-writing
// source on the measured core for net_null ports, a worker launched on lcore 1, dpdk-testpmd
// run as the same-run reference, MPLS frame headers, and the one-line summaries that
// perf/run_all gathers into a table.

#include <array>
#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <rte_ring.h>

#include "control/control_plane.hh"
#include "dataplane/worker.hh"
#include "support/call_client.hh"
#include "support/control_loop.hh"

namespace vcplane::bench {

// Starts the EAL: lcores 0-1, main lcore 0, no hugepages, no PCI, the given vdevs. Exits the
// process with a message when the EAL refuses.
void start_eal(const std::string& program, unsigned memory_mb,
               const std::vector<std::string>& vdevs = {});

// An mbuf pool of `buffers` default-sized buffers (cache 256). Exits the process with a
// message when the EAL cannot make it.
rte_mempool* make_pool(unsigned buffers);

// A ring port (device "net_ring_<name>") receiving from rx and transmitting into tx. rx == tx
// makes a loopback port: what it sends it receives again, like testpmd's net_ring vdev.
bool make_ring_port(const std::string& name, rte_ring* rx, rte_ring* tx);

// The daemon's control plane on a config text with one worker (lcore 1, not launched), the
// control loop that serves it on the calling thread (made an RCU reader, offline), and a
// call-management client attached to every connection.
class plane {
public:
    plane(const std::string& config_toml, rte_mempool* pool);
    // The same with lcores 0-1 and these connections, each (name, device), and `extra_toml`
    // after them (e.g. a [metrics] table).
    plane(const std::vector<std::pair<std::string, std::string>>& connections, rte_mempool* pool,
          const std::string& extra_toml = "");
    control_plane& control() noexcept { return plane_; }
    test::call_client& client() noexcept { return *client_; }
    test::control_loop& loop() noexcept { return ctl_; }
    worker& first_worker() noexcept { return *plane_.workers()[0]; }
    uint16_t port(const std::string& connection) const;

private:
    vcplane_config config_; // first: parsing makes the thread an RCU reader
    test::control_loop ctl_;
    control_plane plane_;
    std::optional<test::call_client> client_; // made once the plane has started
};

// What the worker did in a measured window (counters read before and after).
struct window {
    double seconds = 0;
    uint64_t busy_cycles = 0;
    std::array<uint64_t, RTE_MAX_ETHPORTS> rx_packets{}, tx_packets{}; // by port
    uint64_t tx_total() const noexcept;
    double mpps(uint64_t packets) const noexcept { return double(packets) / seconds / 1e6; }
};
// Launches w on lcore 1, lets it warm up for 0.3 s, measures `seconds` while the calling lcore
// sleeps (touching nothing the worker uses: for sources on the worker's own core), stops it.
window run_worker_for(worker& w, double seconds);

// Runs w.run(stop) on lcore 1; stop_worker() sets stop and waits for it.
void launch_worker(worker& w, std::atomic<bool>& stop);
void stop_worker(std::atomic<bool>& stop);

// Runs dpdk-testpmd on lcores 0-1 (forwarding on lcore 1) with the given vdevs and testpmd
// options for about `seconds` of stats, and returns the median of its per-second Tx-pps summed
// over `ports` ports, in Mpps (the first two readings, start-up, left out). 0 when it cannot
// run; the reason is printed to stderr.
double testpmd_tx_mpps(const std::string& vdevs, const std::string& options, unsigned ports,
                       double seconds);

// Writes an Ethernet + MPLS header (bottom of stack) at f.
void write_mpls_header(uint8_t* f, uint32_t label, uint8_t ttl);

// A traffic source on the measured core, for ports whose RX hands out buffers without
// writing them (net_null: fresh buffers from the pool, length set, data untouched). An RX
// callback on the port's queue 0 gives every buffer it delivers a real frame: it sets the
// length to `size` and writes an Ethernet + MPLS header (labels first_label, first_label + 1,
// ... in turn over `labels`, TTL `ttl`), as testpmd txonly writes its template into every
// buffer it sends. The cost is the measured core's and is in every figure taken on it.
// The fields may change while no lcore polls the port.
struct header_source {
    uint32_t first_label = 100;
    uint32_t labels = 1;
    uint8_t ttl = 64;
    uint32_t size = 64; // bytes without FCS; at least the header
    // A frame larger than segment bytes is a chain, as a NIC's RX hands over a jumbo frame:
    // its first segment the received buffer, the others taken from tail_pool.
    uint16_t segment = 2048;
    rte_mempool* tail_pool = nullptr;
    uint32_t next = 0; // the callback's own
};
// Installs src (which must outlive the port's use) on port's RX queue 0; false: refused.
bool add_header_source(uint16_t port, header_source& src);
// The source alone: lcore 1 receives from port (callback included) and frees, for `seconds`.
// Mpps: the ceiling of what the port with its source can present to a worker.
double source_alone_mpps(uint16_t port, double seconds);

// One summary line: "summary: <benchmark> | <measure> | <value> | <target> | <verdict>".
// target_ratio <= 0: informative, no target.
void summary(const std::string& benchmark, const std::string& measure, double value,
             double target_ratio);
// The same for a measure whose target is a ceiling: "<= limit".
void summary_at_most(const std::string& benchmark, const std::string& measure, double value,
                     double limit);

uint64_t tx_packets(const worker_counters& c); // summed over every port

// The middle value of v (the upper one of an even count); 0 for none.
double median(std::vector<double> v);

} // namespace vcplane::bench
