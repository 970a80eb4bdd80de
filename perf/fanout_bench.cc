// Fan-out benchmark (issue 8, benchmark 2): output copies per second on one worker core for
// calls of 1..64 parties, 64- and 1500-byte frames, against dpdk-testpmd --forward-mode=txonly
// on the same sink vdev and core, measured in the same run. Both count packets leaving the core
// into net_null0 (no-rx: it frees what it is given, chains included).
//
//   fanout_bench [--seconds S] [--parties 1,2,4,8,16,64] [--sizes 64,1500] [--no-reference]
//
// Set-up: real EAL (lcore 0: control, idle while measuring; lcore 1: the worker, or testpmd's
// forwarding core). The source is port `in`, a net_null vdev whose RX hands out fresh buffers,
// with an RX callback that writes a real MPLS frame (Ethernet header, the call's label) into
// each: on the worker's own core, as testpmd txonly writes its frames on its own core, so no
// frame crosses between cores (a source on another core made every frame two or three
// cross-core cache misses, more than the forwarding itself, and varying with where the VM's
// vCPUs sit). Every party of the call is on `sink`, with its own label and next hop. The
// source alone (received and freed on lcore 1) is printed per size, to show it is well above
// the rates measured.

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fmt/format.h>
#include <map>
#include <rte_cycles.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <string>
#include <tuple>
#include <vector>

#include "base/log.hh"
#include "control/control_plane.hh"
#include "dataplane/wire.hh"
#include "perf/bench_support.hh"
#include "support/call_client.hh"
#include "support/control_loop.hh"

using namespace vcplane;
using clock_type = std::chrono::steady_clock;

namespace {

struct result {
    double in_mpps = 0, out_mpps = 0, busy = 0, cycles_per_copy = 0;
};

// The worker forwards for `seconds` what `in` (net_null with the header source) presents.
// The main lcore only waits: it touches nothing the worker uses.
// Open vSwitch's group type=all on the same vdevs and core (perf/ovs_fanout), 64-byte frames:
// copies out per fan-out in Mpps; empty when it cannot run (the reason printed).
std::map<unsigned, double> ovs_copies_mpps(const std::vector<unsigned>& fanouts, double seconds) {
    std::string cmd = fmt::format("{} --seconds {}", VCPLANE_OVS_FANOUT, seconds);
    for (unsigned n : fanouts) {
        cmd += fmt::format(" {}", n);
    }
    std::map<unsigned, double> out;
    FILE* p = popen((cmd + " 2>&1").c_str(), "r");
    if (p == nullptr) {
        std::fprintf(stderr, "fanout_bench: cannot run %s\n", VCPLANE_OVS_FANOUT);
        return out;
    }
    char line[512];
    while (std::fgets(line, sizeof line, p) != nullptr) {
        unsigned n = 0;
        double copies = 0, in = 0;
        if (std::sscanf(line, "ovs %u %lf %lf", &n, &copies, &in) == 3) {
            out[n] = copies;
        } else if (std::strncmp(line, "ovs unavailable", 15) == 0) {
            std::fprintf(stderr, "fanout_bench: %s", line);
        }
    }
    pclose(p);
    return out;
}

result run(worker& w, uint16_t in, uint16_t sink, double seconds) {
    const bench::window win = bench::run_worker_for(w, seconds);
    const uint64_t copies = win.tx_packets[sink];
    result r;
    r.in_mpps = win.mpps(win.rx_packets[in]);
    r.out_mpps = win.mpps(copies);
    r.busy = 100.0 * double(win.busy_cycles) / (win.seconds * double(rte_get_tsc_hz()));
    r.cycles_per_copy = copies != 0 ? double(win.busy_cycles) / double(copies) : 0;
    return r;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"fanout_bench: output copies per second against testpmd txonly"};
    double seconds = 3;
    std::vector<unsigned> fanouts{1, 2, 4, 8, 16, 64};
    std::vector<unsigned> sizes{64, 1500};
    bool no_reference = false, no_ovs = false;
    app.add_option("--seconds", seconds, "length of each run (after 0.3 s of warm-up)");
    app.add_option("--parties", fanouts, "fan-outs to measure")->delimiter(',');
    app.add_option("--sizes", sizes, "frame sizes (bytes without FCS)")->delimiter(',');
    app.add_flag("--no-reference", no_reference, "skip testpmd and Open vSwitch");
    app.add_flag("--no-ovs", no_ovs, "skip Open vSwitch (perf/ovs_fanout)");
    CLI11_PARSE(app, argc, argv);
    log::set_threshold(log::level::warning);

    bench::start_eal("fanout-bench", 1024, {"net_null0,no-rx=1", "net_null1"});
    rte_mempool* pool = bench::make_pool(65535);
    bench::plane bp({{"in", "net_null1"}, {"sink", "net_null0"}}, pool);
    test::call_client& client = bp.client();
    for (unsigned n : fanouts) {
        callmgmt::vc_handle v = 0;
        callmgmt::party_handle first = 0;
        if (client.make("in", 0, test::call(fmt::format("fan{}", n), 100 + n),
                        test::party("p0", "sink", 1000 * n), &v,
                        &first) != callmgmt::status::success) {
            std::fprintf(stderr, "fanout_bench: make_call: %s\n", client.error("in").c_str());
            return 1;
        }
        for (unsigned i = 1; i < n; ++i) {
            callmgmt::party_handle p = 0;
            if (client.add("in", v, test::party(fmt::format("p{}", i), "sink", 1000 * n + i), &p) !=
                callmgmt::status::success) {
                std::fprintf(stderr, "fanout_bench: add_party: %s\n", client.error("in").c_str());
                return 1;
            }
        }
    }
    const uint16_t sink = bp.port("sink");
    const uint16_t in = bp.port("in");
    worker& w = bp.first_worker();
    static bench::header_source source;
    if (!bench::add_header_source(in, source)) {
        return 1;
    }

    // Open vSwitch first, while this process's worker is stopped (both use lcore 1).
    std::map<unsigned, double> ovs;
    if (!no_reference && !no_ovs && std::find(sizes.begin(), sizes.end(), 64u) != sizes.end()) {
        ovs = ovs_copies_mpps(fanouts, seconds);
    }
    std::printf("fanout_bench: 1 worker (lcore 1), source net_null1 + header-writing RX "
                "callback on lcore 1, sink net_null0 (no-rx); %.1f s per run; references on "
                "lcore 1: dpdk-testpmd txonly on net_null0, Open vSwitch group type=all from "
                "net_null0 to net_null1 (64 B)\n",
                seconds);
    std::printf("%7s %6s %9s %10s %7s %12s %12s %9s %9s %7s\n", "parties", "bytes", "in Mpps",
                "copies Mpps", "busy %", "cycles/copy", "testpmd Mpps", "x testpmd", "OVS Mpps",
                "x OVS");
    std::vector<std::tuple<std::string, double, double>> summaries;
    for (unsigned size : sizes) {
        const double ref =
            no_reference
                ? 0
                : bench::testpmd_tx_mpps(
                      "--vdev=net_null0,no-rx=1",
                      fmt::format("--forward-mode=txonly --port-topology=loop --txpkts={}", size),
                      1, seconds);
        source.size = uint16_t(size);
        source.first_label = 0; // no call: the source's own ceiling, every frame freed
        const double alone = bench::source_alone_mpps(in, std::min(seconds, 1.0));
        std::printf("%7s %6u %9.2f   (the source alone on lcore 1: received and freed)\n", "-",
                    size, alone);
        for (unsigned n : fanouts) {
            source.first_label = 100 + n;
            const result r = run(w, in, sink, seconds);
            const double o = size == 64 && ovs.count(n) != 0 ? ovs[n] : 0.0;
            std::printf("%7u %6u %9.2f %10.2f %7.1f %12.1f %12.2f %9.3f %9.2f %7.2f\n", n, size,
                        r.in_mpps, r.out_mpps, r.busy, r.cycles_per_copy, ref,
                        ref > 0 ? r.out_mpps / ref : 0.0, o, o > 0 ? r.out_mpps / o : 0.0);
            std::fflush(stdout);
            if (n == 8 && ref > 0 && (size == 64 || size == 1500)) {
                summaries.emplace_back(fmt::format("8 parties, {} B copies / testpmd txonly", size),
                                       r.out_mpps / ref, size == 64 ? 1.0 : 0.9);
            }
            if (n == 8 && o > 0) {
                summaries.emplace_back("8 parties, 64 B copies / Open vSwitch group type=all",
                                       r.out_mpps / o, 8.0);
            }
        }
    }
    std::printf("(tsc %.0f MHz; copies: frames the worker handed to the sink and it took)\n",
                double(rte_get_tsc_hz()) / 1e6);
    for (const auto& [what, ratio, target] : summaries) {
        bench::summary("fanout", what, ratio, target);
    }
    std::fflush(stdout);
    std::_Exit(0); // as scrape_bench: the measurement is done, teardown is not measured
}
