// Scrape benchmark (issue 7): does a Prometheus scrape disturb forwarding? One worker forwards
// frames spread uniformly over 100 000 VCs while the metrics endpoint is scraped once a second,
// a hundred times a second (stress), or not at all (the reference, measured in the same run,
// runs interleaved with the others). Reported: the worker's forwarding rate and its busy cycles
// per frame, and their ratios to the reference.
//
//   scrape_bench [--vcs N] [--seconds S] [--rounds R] [--per-vc] [--per-party]
//                [--max-series N]
//
// --per-vc / --per-party turn the opt-in per-object series on ([metrics] of the config): the
// worker then also counts per VC (party) and every scrape reports up to --max-series of each.
//
// Set-up: real EAL (lcore 0 control + traffic source + the exposer's HTTP threads, lcore 1
// worker), ring port `in` fed by the main lcore with 64-byte MPLS frames whose labels are
// uniformly random over the VCs, every VC with one party on `sink` (net_null, no RX: it frees
// what it is given). The source runs on the main lcore at whatever rate it reaches; its rate is
// printed, and the comparison is the worker's cycles per frame, which the source does not set.

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fmt/format.h>
#include <random>
#include <rte_cycles.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <thread>

#include "base/log.hh"
#include "control/control_plane.hh"
#include "daemon/metrics.hh"
#include "dataplane/wire.hh"
#include "perf/bench_support.hh"
#include "port/eal.hh"
#include "port/ports.hh"
#include "support/call_client.hh"
#include "support/control_loop.hh"
#include "support/process.hh"

using namespace vcplane;
using clock_type = std::chrono::steady_clock;

namespace {

struct sample {
    double seconds = 0;
    uint64_t injected = 0, forwarded = 0, busy_cycles = 0, scrapes = 0;
    size_t scrape_bytes = 0;
};

uint64_t forwarded(const worker_counters& c) {
    uint64_t n = 0;
    for (uint16_t p = 0; p < RTE_MAX_ETHPORTS; ++p) {
        n += c.port[p].tx_packets.read();
    }
    return n;
}

// Feeds `in` for `seconds` while a thread scrapes every `interval` (zero: never).
sample run(const worker_counters& wc, rte_ring* in, rte_mempool* pool, uint32_t vcs, double seconds,
           std::chrono::milliseconds interval, uint16_t metrics_port) {
    std::atomic<bool> done{false};
    std::atomic<uint64_t> scrapes{0};
    std::atomic<size_t> bytes{0};
    std::thread scraper([&] {
        if (interval.count() == 0) {
            return;
        }
        auto next = clock_type::now();
        while (!done.load()) {
            next += interval;
            bytes = test::http_get(metrics_port, "/metrics").size();
            scrapes.fetch_add(1);
            std::this_thread::sleep_until(next);
        }
    });
    std::mt19937 rng(42);
    std::vector<uint32_t> labels(1 << 16);
    for (auto& l : labels) {
        l = 16 + rng() % vcs;
    }
    sample s;
    const uint64_t fwd0 = forwarded(wc), busy0 = wc.busy_cycles.read();
    const auto start = clock_type::now();
    const auto end = start + std::chrono::duration<double>(seconds);
    rte_mbuf* burst[32];
    size_t li = 0;
    static const uint8_t dst[6] = {2, 0, 0, 0, 0, 0xfe}, src[6] = {2, 0, 0, 0, 0, 1};
    while (clock_type::now() < end) {
        for (int k = 0; k < 64; ++k) {
            if (rte_ring_free_count(in) < 32 || rte_pktmbuf_alloc_bulk(pool, burst, 32) != 0) {
                break;
            }
            for (auto* m : burst) {
                auto* f = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, 64));
                wire::write_macs(f, dst, src);
                wire::store_be16(f + 12, wire::ethertype_mpls);
                wire::store_be32(f + 14, wire::make_mpls_entry(labels[li++ & 0xffff], 0, true, 64));
            }
            rte_ring_sp_enqueue_bulk(in, reinterpret_cast<void**>(burst), 32, nullptr);
            s.injected += 32;
        }
    }
    s.seconds = std::chrono::duration<double>(clock_type::now() - start).count();
    s.forwarded = forwarded(wc) - fwd0;
    s.busy_cycles = wc.busy_cycles.read() - busy0;
    done = true;
    scraper.join();
    s.scrapes = scrapes.load();
    s.scrape_bytes = bytes.load();
    return s;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"scrape_bench: forwarding with and without Prometheus scrapes"};
    uint32_t vcs = 100000;
    double seconds = 3;
    int rounds = 3;
    app.add_option("--vcs", vcs, "VCs provisioned (labels 16..16+N-1)");
    app.add_option("--seconds", seconds, "length of each run");
    app.add_option("--rounds", rounds, "rounds of (none, 1 s, 10 ms) runs");
    bool per_vc = false, per_party = false;
    uint32_t max_series = 10000;
    app.add_flag("--per-vc", per_vc, "count and export per-VC series");
    app.add_flag("--per-party", per_party, "count and export per-party series");
    app.add_option("--max-series", max_series, "series of each kind before the remainder");
    CLI11_PARSE(app, argc, argv);
    log::set_threshold(log::level::warning);

    eal_start({"scrape_bench", "-l", "0-1", "--main-lcore", "0", "--no-huge", "-m", "2048",
               "--no-pci", "--file-prefix", fmt::format("scrape-bench-{}", getpid()),
               "--vdev=net_null0,no-rx=1", "--log-level", "warning"});
    rte_mempool* pool = bench::make_pool(65535);
    rte_ring* in_rx = rte_ring_create("in_r", 16384, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
    rte_ring* in_tx = rte_ring_create("in_t", 1024, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
    if (in_rx == nullptr || in_tx == nullptr ||
        rte_eth_from_rings("in", &in_rx, 1, &in_tx, 1, 0) < 0) {
        std::fprintf(stderr, "scrape_bench: cannot create the ports\n");
        return 1;
    }
    rcu_register_thread();
    rcu_thread_offline();
    const auto cfg = parse_config_string(fmt::format(R"([eal]
lcores = [0, 1]
[metrics]
per_vc = {}
per_party = {}
max_series = {}
[connections.in]
device = "net_ring_in"
[connections.sink]
device = "net_null0"
)",
                                                     per_vc, per_party, max_series),
                                         "scrape.toml");
    test::control_loop ctl;
    control_plane plane(cfg, ctl.gp, pool, 1, ctl.post());
    plane.start();
    test::call_client client(plane.registrar(), [&] { ctl.pump(0); });
    const auto made_at = clock_type::now();
    for (uint32_t i = 0; i < vcs; ++i) {
        callmgmt::vc_handle v = 0;
        callmgmt::party_handle p = 0;
        if (client.make("in", 0, test::call(fmt::format("c{}", i), 16 + i),
                        test::party("p", "sink", 16 + i), &v, &p) != callmgmt::status::success) {
            std::fprintf(stderr, "scrape_bench: make_call %u: %s\n", i, client.error("in").c_str());
            return 1;
        }
    }
    const double make_s = std::chrono::duration<double>(clock_type::now() - made_at).count();
    snapshot_cell cell;
    cell.set(plane.snapshot(true));
    const uint16_t metrics_port = test::free_tcp_port();
    metrics_server metrics(fmt::format("127.0.0.1:{}", metrics_port),
                           std::make_shared<dataplane_metrics>(plane.workers(),
                                                               plane.state().vc_slots(),
                                                               plane.state().party_slots(), cell));

    std::atomic<bool> stop;
    bench::launch_worker(*plane.workers()[0], stop);
    const worker_counters& wc = plane.workers()[0]->counters();
    const std::chrono::milliseconds modes[] = {std::chrono::milliseconds(0),
                                               std::chrono::milliseconds(1000),
                                               std::chrono::milliseconds(10)};
    std::vector<sample> results[3];
    run(wc, in_rx, pool, vcs, 0.5, modes[0], metrics_port); // warm-up: caches, pool, leaves
    for (int r = 0; r < rounds; ++r) {
        for (int k = 0; k < 3; ++k) {
            const int m = (k + r) % 3; // rotate the order: no mode always runs first
            results[m].push_back(run(wc, in_rx, pool, vcs, seconds, modes[m], metrics_port));
        }
    }
    bench::stop_worker(stop);

    const double hz = double(rte_get_tsc_hz());
    using bench::median;
    double ref_mpps = 0, ref_cpp = 0;
    std::printf("scrape_bench: %u VCs (made in %.2f s), 1 worker, 64-byte frames, labels uniform "
                "over the VCs; per-VC series %s, per-party series %s (max %u each); %d rounds "
                "of %.1f s, medians\n",
                vcs, make_s, per_vc ? "on" : "off", per_party ? "on" : "off", max_series, rounds,
                seconds);
    std::printf("%-18s %9s %9s %7s %12s %7s %8s %8s %12s\n", "scrapes", "src Mpps", "fwd Mpps",
                "busy %", "cycles/frame", "x fwd", "x cycles", "scrapes", "bytes/scrape");
    const char* names[] = {"none (reference)", "every 1 s", "every 10 ms"};
    for (int m = 0; m < 3; ++m) {
        std::vector<double> src, fwd, cpp, busy;
        uint64_t n = 0;
        size_t bytes = 0;
        for (const auto& s : results[m]) {
            src.push_back(double(s.injected) / s.seconds / 1e6);
            fwd.push_back(double(s.forwarded) / s.seconds / 1e6);
            cpp.push_back(s.forwarded ? double(s.busy_cycles) / double(s.forwarded) : 0);
            busy.push_back(100.0 * double(s.busy_cycles) / (s.seconds * hz));
            n += s.scrapes;
            bytes = std::max(bytes, s.scrape_bytes);
        }
        if (m == 0) {
            ref_mpps = median(fwd);
            ref_cpp = median(cpp);
        }
        std::printf("%-18s %9.2f %9.2f %7.1f %12.1f %7.3f %8.3f %8llu %12zu\n", names[m],
                    median(src), median(fwd), median(busy), median(cpp), median(fwd) / ref_mpps,
                    median(cpp) / ref_cpp, (unsigned long long)n, bytes);
    }
    std::printf("(tsc %.0f MHz; x fwd: forwarding rate / reference; x cycles: worker cycles per "
                "frame / reference)\n",
                hz / 1e6);
    std::fflush(stdout);
    std::_Exit(0); // the plane's 100 000 calls need not be torn down one by one
}
