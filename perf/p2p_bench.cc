// Point-to-point benchmark (issue 8, benchmark 1): classify, label swap, TTL and MAC rewrite on
// one worker core, against dpdk-testpmd --forward-mode=mac on the same vdevs and the same
// core, measured in the same run. Two set-ups, each in a process of its own:
//
//   p2p_bench [--seconds S] [--rounds R] [--vcs N] [--population P] [--on ring,null]
//             [--no-reference]
//
// ring: a closed loop, as testpmd's own with --tx-first: ports `a` and `b` are loopback ring
// ports (what a port transmits it receives again, as testpmd's net_ring vdev does), every
// label L on `a` is a call to a party on `b` with out-label L and the reverse, so a frame goes
// round and round, a real MPLS frame rewritten at every pass. Its TTL (255 when made) falls by
// one per pass; after 254 passes the worker drops it (ttl_expired) and the main lcore puts a
// fresh one in through the worker's control ring, keeping P frames per port in flight. The
// loop alone (frames moved between the same rings by a bare rx/tx loop on lcore 1, untouched)
// shows how far above the measured rate the source is. Reference: testpmd mac on net_ring0 +
// net_ring1 --tx-first. The ports cost almost nothing: this measures the forwarding itself.
//
// null: ports `a` and `b` are net_null vdevs, as for testpmd mac on 2 x net_null (the
// reference): RX hands out fresh buffers, TX frees. A header-writing RX callback on the
// worker's core makes each buffer a real MPLS frame (bench::header_source); its cost is
// counted against vcplane (testpmd mac does not pay it). The source alone (received and
// freed) is measured too.

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fmt/format.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.hh"
#include "control/control_plane.hh"
#include "perf/bench_support.hh"
#include "support/call_client.hh"
#include "support/control_loop.hh"

using namespace vcplane;
using clock_type = std::chrono::steady_clock;

namespace {

using bench::median;

// A result table: a header, then rows of a rate, its cycles per frame and its ratio to the
// reference (none when ratio < 0).
void print_header() {
    std::printf("%-44s %9s %13s %9s\n", "", "Mpps", "cycles/frame", "x testpmd");
}
void print_row(const char* what, double mpps, double cycles, double ratio) {
    std::printf("%-44s %9.2f %13.1f ", what, mpps, cycles);
    ratio < 0 ? std::printf("%9s\n", "") : std::printf("%9.3f\n", ratio);
}
double cycles_at(double mpps) {
    return mpps > 0 ? double(rte_get_tsc_hz()) / (mpps * 1e6) : 0.0;
}

constexpr uint32_t first_label = 100;
constexpr uint8_t fresh_ttl = 255;

struct loop_ports {
    uint16_t a, b;
    rte_ring *ra, *rb;
    rte_ring* inject; // main lcore -> worker: fresh frames, each with m->port = its loop
};

struct result {
    double mpps = 0, busy = 0, cycles = 0, injected_per_s = 0, per_pass = 0;
};

// Puts fresh frames into the loop until `in_flight` are there. Labels rotate over the VCs.
uint64_t top_up(const loop_ports& p, rte_mempool* pool, uint64_t missing, uint32_t vcs,
                uint32_t& next) {
    uint64_t put = 0;
    rte_mbuf* burst[32];
    while (missing > 0) {
        const unsigned n = unsigned(std::min<uint64_t>(missing, 32));
        if (rte_pktmbuf_alloc_bulk(pool, burst, n) != 0) {
            break;
        }
        for (unsigned i = 0; i < n; ++i) {
            auto* f = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(burst[i], 64));
            bench::write_mpls_header(f, first_label + next++ % vcs, fresh_ttl);
        }
        const uint16_t port = (put / 32) % 2 == 0 ? p.a : p.b;
        for (unsigned i = 0; i < n; ++i) {
            burst[i]->port = port; // where the worker transmits it: into that port's loop
        }
        const unsigned in =
            rte_ring_sp_enqueue_burst(p.inject, reinterpret_cast<void**>(burst), n, nullptr);
        rte_pktmbuf_free_bulk(burst + in, n - in);
        put += in;
        missing -= std::min<uint64_t>(missing, n);
    }
    return put;
}

// The worker forwards the loop for `seconds` while the main lcore keeps it full.
result run_worker(worker& w, const loop_ports& p, rte_mempool* pool, uint32_t vcs,
                  unsigned population, double seconds) {
    const worker_counters& wc = w.counters();
    auto lost = [&] {
        uint64_t n = 0;
        for (size_t r = 0; r < drop_reason_count; ++r) {
            n += wc.drops[r].read();
        }
        return n;
    };
    static uint64_t injected = 0; // frames ever put in, across runs (the loop keeps them)
    static uint32_t next_label = 0;
    std::atomic<bool> stop;
    bench::launch_worker(w, stop);
    uint64_t put = 0, tx0 = 0, busy0 = 0, put0 = 0, loops0 = 0;
    auto start = clock_type::now();
    const auto warm = start + std::chrono::milliseconds(300);
    const auto end = warm + std::chrono::duration<double>(seconds);
    bool measuring = false;
    for (auto now = start; now < end; now = clock_type::now()) {
        if (!measuring && now >= warm) {
            measuring = true;
            start = now;
            tx0 = bench::tx_packets(wc);
            busy0 = wc.busy_cycles.read();
            loops0 = wc.loops.read();
            put0 = put;
        }
        const uint64_t in_flight = injected - lost();
        if (in_flight < 2ull * population) {
            const uint64_t n = top_up(p, pool, 2ull * population - in_flight, vcs, next_label);
            injected += n;
            put += n;
        }
        // Look again in a while, not at once: reading the worker's counters in a tight loop
        // would pull their cache lines away from it on every pass (a frame lives ~250 passes
        // of the loop, a few hundred µs at these rates, so the loop is seldom short).
        rte_delay_us_block(20);
    }
    const double s = std::chrono::duration<double>(clock_type::now() - start).count();
    const uint64_t tx = bench::tx_packets(wc) - tx0;
    const uint64_t busy = wc.busy_cycles.read() - busy0;
    const uint64_t loops = wc.loops.read() - loops0;
    bench::stop_worker(stop);
    result r;
    r.mpps = double(tx) / s / 1e6;
    r.busy = 100.0 * double(busy) / (s * double(rte_get_tsc_hz()));
    r.cycles = tx != 0 ? double(busy) / double(tx) : 0;
    r.injected_per_s = double(put - put0) / s;
    r.per_pass = loops != 0 ? double(tx) / double(loops) : 0;
    return r;
}

// The loop alone: lcore 1 moves frames a -> b and b -> a untouched (testpmd's io mode).
double run_bare_loop(const loop_ports& p, double seconds) {
    struct args_t {
        loop_ports p;
        std::atomic<bool> stop{false};
        std::atomic<uint64_t> moved{0};
    };
    static args_t args;
    args.p = p;
    args.stop = false;
    rte_eal_remote_launch(
        [](void* v) {
            auto* a = static_cast<args_t*>(v);
            rte_mbuf* pkts[32];
            uint64_t moved = 0;
            while (!a->stop.load(std::memory_order_relaxed)) {
                for (int dir = 0; dir < 2; ++dir) {
                    const uint16_t from = dir == 0 ? a->p.a : a->p.b,
                                   to = dir == 0 ? a->p.b : a->p.a;
                    const uint16_t n = rte_eth_rx_burst(from, 0, pkts, 32);
                    const uint16_t sent = rte_eth_tx_burst(to, 0, pkts, n);
                    rte_pktmbuf_free_bulk(pkts + sent, n - sent);
                    moved += sent;
                }
                a->moved.store(moved, std::memory_order_relaxed);
            }
            return 0;
        },
        &args, 1);
    const auto start = clock_type::now();
    while (clock_type::now() < start + std::chrono::milliseconds(300)) {
    }
    const uint64_t m0 = args.moved.load();
    const auto t0 = clock_type::now();
    while (clock_type::now() < t0 + std::chrono::duration<double>(seconds)) {
    }
    const uint64_t m1 = args.moved.load();
    const double s = std::chrono::duration<double>(clock_type::now() - t0).count();
    args.stop = true;
    rte_eal_wait_lcore(1);
    return double(m1 - m0) / s / 1e6;
}

} // namespace

struct options {
    double seconds = 3;
    int rounds = 3;
    uint32_t vcs = 16;
    unsigned population = 32;
    bool no_reference = false;
    bool latency_samples = false; // metrics.forwarding_latency on: what sampling costs
};

std::string extra_toml(const options& o) {
    return o.latency_samples ? "[metrics]\nforwarding_latency = true\n" : "";
}

// Both directions' calls between connections a and b: label L on one is a call to a party on
// the other with out-label L.
bool make_calls(bench::plane& bp, uint32_t vcs) {
    test::call_client& client = bp.client();
    for (uint32_t i = 0; i < vcs; ++i) {
        const uint32_t label = first_label + i;
        for (const char* dir : {"a", "b"}) {
            callmgmt::vc_handle v = 0;
            callmgmt::party_handle party = 0;
            const char* other = dir[0] == 'a' ? "b" : "a";
            if (client.make(dir, 0, test::call(fmt::format("{}{}", dir, label), label, false),
                            test::party("p", other, label), &v,
                            &party) != callmgmt::status::success) {
                std::fprintf(stderr, "p2p_bench: make_call: %s\n", client.error(dir).c_str());
                return false;
            }
        }
    }
    return true;
}

// On 2 x net_null, as testpmd mac on 2 x net_null: each port's RX hands out fresh buffers,
// into which a header-writing RX callback on the worker's core puts a real MPLS frame
// (bench::header_source, labels rotating over the calls); the worker forwards a -> b and
// b -> a, net_null's TX frees. The source's own cost (writing 18 bytes per frame) is in the
// worker's figures; testpmd mac does not pay it.
int null_pair(const options& o) {
    bench::start_eal("p2p-bench-null", 1024, {"net_null0", "net_null1"});
    rte_mempool* pool = bench::make_pool(16383);
    bench::plane bp({{"a", "net_null0"}, {"b", "net_null1"}}, pool, extra_toml(o));
    if (!make_calls(bp, o.vcs)) {
        return 1;
    }
    static bench::header_source src_a, src_b;
    src_a.labels = src_b.labels = o.vcs;
    src_a.first_label = src_b.first_label = first_label;
    if (!bench::add_header_source(bp.port("a"), src_a) ||
        !bench::add_header_source(bp.port("b"), src_b)) {
        return 1;
    }
    worker& w = bp.first_worker();
    std::vector<double> mpps, cycles, alone;
    for (int r = 0; r < o.rounds; ++r) {
        const bench::window win = bench::run_worker_for(w, o.seconds);
        const uint64_t tx = win.tx_total();
        mpps.push_back(win.mpps(tx));
        cycles.push_back(tx != 0 ? double(win.busy_cycles) / double(tx) : 0);
        alone.push_back(bench::source_alone_mpps(bp.port("a"), std::min(o.seconds, 1.0)));
    }
    const double ref = o.no_reference ? 0
                                      : bench::testpmd_tx_mpps("--vdev=net_null0 --vdev=net_null1",
                                                               "--forward-mode=mac", 2, o.seconds);
    const double hz = double(rte_get_tsc_hz());
    const double m = median(mpps);
    std::printf("p2p_bench: 1 worker (lcore 1), 2 x net_null (RX with a header-writing callback: "
                "real MPLS frames), %u calls per direction, 64-byte frames; %d rounds of %.1f s, "
                "medians\n",
                o.vcs, o.rounds, o.seconds);
    print_header();
    print_row("the source alone on lcore 1 (one port)", median(alone), cycles_at(median(alone)),
              -1);
    print_row("testpmd mac, 2 x net_null", ref, cycles_at(ref), 1.0);
    print_row("vcplane worker (busy cycles per frame)", m, median(cycles), ref > 0 ? m / ref : 0.0);
    std::printf("(tsc %.0f MHz; the source alone: received and freed, no forwarding)\n", hz / 1e6);
    if (ref > 0) {
        bench::summary("p2p", "64 B point-to-point / testpmd mac (2 x net_null)", m / ref, 1.0);
    }
    bench::summary("p2p", "net_null source ceiling / measured rate (per port)",
                   median(alone) / (m / 2), 1.5);
    std::fflush(stdout);
    std::_Exit(0); // the measurement is done; teardown is not measured
}

// The closed loop of two loopback ring ports (see the top of the file).
int ring_loop(const options& o) {
    bench::start_eal("p2p-bench-ring", 1024);
    rte_mempool* pool = bench::make_pool(16383);
    // Loopback rings, single-producer and single-consumer as testpmd's net_ring vdev's: the
    // worker is their only user. The main lcore tops the loop up through the worker's control
    // ring (frames it transmits on m->port), so no ring takes an atomic compare-and-swap.
    loop_ports p{};
    p.ra = rte_ring_create("loop_a", 1024, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
    p.rb = rte_ring_create("loop_b", 1024, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
    p.inject = rte_ring_create("loop_inject", 1024, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
    if (p.inject == nullptr || !bench::make_ring_port("a", p.ra, p.ra) ||
        !bench::make_ring_port("b", p.rb, p.rb)) {
        std::fprintf(stderr, "p2p_bench: cannot create the ports\n");
        return 1;
    }
    bench::plane bp({{"a", "net_ring_a"}, {"b", "net_ring_b"}}, pool, extra_toml(o));
    if (!make_calls(bp, o.vcs)) {
        return 1;
    }
    p.a = bp.port("a");
    p.b = bp.port("b");
    worker& w = bp.first_worker();
    w.set_control_ring(p.inject); // replaces the control plane's (no close data is sent here)

    std::vector<double> mpps, cycles, busy, loop, topups, per_pass;
    for (int r = 0; r < o.rounds; ++r) {
        const result res = run_worker(w, p, pool, o.vcs, o.population, o.seconds);
        mpps.push_back(res.mpps);
        per_pass.push_back(res.per_pass);
        cycles.push_back(res.cycles);
        busy.push_back(res.busy);
        topups.push_back(res.injected_per_s);
        loop.push_back(run_bare_loop(p, o.seconds));
    }
    double ref_ring = 0;
    if (!o.no_reference) {
        ref_ring = bench::testpmd_tx_mpps("--vdev=net_ring0 --vdev=net_ring1",
                                          "--forward-mode=mac --tx-first", 2, o.seconds);
    }
    const double hz = double(rte_get_tsc_hz());
    const double m = median(mpps);
    std::printf("p2p_bench: 1 worker (lcore 1), closed loop of 2 loopback ring ports, %u frames "
                "in flight per port, %u calls per direction, 64-byte MPLS frames; %d rounds of "
                "%.1f s, medians\n",
                o.population, o.vcs, o.rounds, o.seconds);
    print_header();
    print_row("bare loop on lcore 1 (source ceiling)", median(loop), cycles_at(median(loop)), -1);
    print_row("testpmd mac, net_ring0+1 --tx-first", ref_ring, cycles_at(ref_ring), 1.0);
    print_row("vcplane worker (busy cycles per frame)", m, median(cycles),
              ref_ring > 0 ? m / ref_ring : 0.0);
    std::printf("(tsc %.0f MHz; worker busy %.1f %%, %.1f frames forwarded per pass over both "
                "ports; frames refreshed by the source %.0f/s = TTL expiries; x testpmd: / "
                "testpmd mac on the same loop)\n",
                hz / 1e6, median(busy), median(per_pass), median(topups));
    if (ref_ring > 0) {
        bench::summary("p2p", "64 B point-to-point / testpmd mac (net_ring loop)", m / ref_ring,
                       1.0);
    }
    bench::summary("p2p", "source ceiling / measured rate", median(loop) / m, 1.5);
    std::fflush(stdout);
    std::_Exit(0); // the measurement is done; teardown is not measured
}

int main(int argc, char** argv) {
    CLI::App app{"p2p_bench: point-to-point forwarding against testpmd mac"};
    options o;
    std::vector<std::string> on{"ring", "null"};
    app.add_option("--seconds", o.seconds, "length of each run (after 0.3 s of warm-up)");
    app.add_option("--rounds", o.rounds, "rounds of runs; medians reported");
    app.add_option("--vcs", o.vcs, "calls per direction (labels 100..100+N-1)")
        ->check(CLI::Range(1u, 100000u));
    app.add_option("--population", o.population,
                   "ring loop: frames in flight per port (testpmd --tx-first: 32)")
        ->check(CLI::Range(1u, 512u));
    app.add_option("--on", on, "ring (the closed loop), null (2 x net_null), or both")
        ->delimiter(',')
        ->check(CLI::IsMember({"ring", "null"}));
    app.add_flag("--no-reference", o.no_reference, "skip testpmd");
    app.add_flag("--latency-samples", o.latency_samples,
                 "sample forwarding latency (metrics.forwarding_latency)");
    CLI11_PARSE(app, argc, argv);
    log::set_threshold(log::level::warning);
    // Each set-up in a process of its own: the worker polls every claimed port, and net_null
    // always has frames, so the two cannot share a plane; a fresh EAL per set-up.
    int rc = 0;
    for (const std::string& what : on) {
        std::fflush(stdout);
        const pid_t pid = fork();
        if (pid == 0) {
            std::_Exit(what == "ring" ? ring_loop(o) : null_pair(o)); // on failure only
        }
        int status = 0;
        if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
            WEXITSTATUS(status) != 0) {
            std::fprintf(stderr, "p2p_bench: the %s set-up failed\n", what.c_str());
            rc = 1;
        }
    }
    return rc;
}
