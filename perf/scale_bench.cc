// Scale benchmark (issue 8, benchmark 3): forwarding on one worker core with 16 VCs against
// the whole MPLS label space on one connection (2^20 labels less the 16 reserved ones:
// 1 048 560 VCs) hit uniformly at random, and the memory one VC takes.
//
//   scale_bench [--vcs N] [--seconds S] [--rounds R] [--population F] [--counted]
//
// The source must present labels from the whole table, not a few thousand recycled ones: frames
// circulate between the main lcore and the worker through rings, and the main lcore writes a
// fresh random label (and TTL) into every frame the worker returns before it goes round again
// (ring port `in` or `small`: main -> worker; ring port `out`: worker -> main; F frames in
// flight, like a NIC's RX ring). Every call has one party on `out` with out-label = its in-label,
// so the main lcore also sees which VC each frame went through and counts the distinct VCs hit. The
// same loop with a bare rx/tx core in place of the worker (touching each frame's label line, as the
// worker does) is the source ceiling, measured in the same run.
//
// The reference is a second connection (`small`, its own ring port) with a table of 16 VCs;
// the large table is on `in`. Runs: the large table provisioned (memory measured); then R
// rounds of: the reference, "16 VCs hit" and "all VCs hit" on the large table, the source
// ceiling. Ratios are taken within a round and their median reported (the VM's speed drifts).

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fmt/format.h>
#include <malloc.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <unistd.h>

#include "base/log.hh"
#include "config/config.hh"
#include "control/control_plane.hh"
#include "dataplane/wire.hh"
#include "perf/bench_support.hh"
#include "support/call_client.hh"
#include "support/control_loop.hh"

using namespace vcplane;
using clock_type = std::chrono::steady_clock;

namespace {

using bench::median;

constexpr uint32_t first_label = 16; // 0..15 are reserved

struct rings {
    rte_ring* in;  // main -> worker (RX of port `in`)
    rte_ring* out; // worker -> main (TX of port `out`)
};

// xorshift64*: a label per frame for a few cycles, no table that would itself be recycled.
struct label_source {
    uint64_t state = 0x9e3779b97f4a7c15ull;
    uint32_t span = 16;
    uint32_t next() noexcept {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        const uint64_t r = (state * 0x2545f4914f6cdd1dull) >> 32;
        return first_label + uint32_t((r * span) >> 32);
    }
};

struct result {
    double mpps = 0, cycles = 0, busy = 0;
    uint64_t distinct = 0;
};

uint64_t count_bits(const std::vector<uint64_t>& bits) {
    uint64_t n = 0;
    for (uint64_t w : bits) {
        n += uint64_t(__builtin_popcountll(w));
    }
    return n;
}

// The main lcore's side of the loop for `seconds` (after 0.3 s of warm-up): every frame the
// worker returns gets a new random label and goes round again. Returns frames returned/s.
double circulate(const rings& r, label_source& labels, double seconds,
                 std::vector<uint64_t>* seen) {
    void* burst[64];
    uint64_t moved = 0;
    auto start = clock_type::now();
    const auto warm = start + std::chrono::milliseconds(300);
    const auto end = warm + std::chrono::duration<double>(seconds);
    bool measuring = false;
    unsigned k = 0;
    for (auto now = start; now < end; now = ((++k & 63) == 0 ? clock_type::now() : now)) {
        if (!measuring && now >= warm) {
            measuring = true;
            start = now;
            moved = 0;
            if (seen != nullptr) {
                std::fill(seen->begin(), seen->end(), 0);
            }
        }
        const unsigned n = rte_ring_sc_dequeue_burst(r.out, burst, 64, nullptr);
        for (unsigned i = 0; i < n; ++i) {
            uint8_t* f = rte_pktmbuf_mtod(static_cast<rte_mbuf*>(burst[i]), uint8_t*);
            if (seen != nullptr) {
                const uint32_t went = wire::load_be32(f + wire::ether_header_len) >> 12;
                (*seen)[went >> 6] |= uint64_t(1) << (went & 63);
            }
            wire::store_be32(f + wire::ether_header_len,
                             wire::make_mpls_entry(labels.next(), 0, true, 64));
        }
        rte_ring_sp_enqueue_bulk(r.in, burst, n, nullptr); // room: F frames fit the ring
        moved += n;
    }
    return double(moved) / std::chrono::duration<double>(clock_type::now() - start).count();
}

result run_worker(worker& w, const rings& r, label_source& labels, double seconds,
                  std::vector<uint64_t>& seen) {
    const worker_counters& wc = w.counters();
    std::atomic<bool> stop;
    bench::launch_worker(w, stop);
    const uint64_t tx0 = bench::tx_packets(wc), busy0 = wc.busy_cycles.read();
    const auto t0 = clock_type::now();
    circulate(r, labels, seconds, &seen);
    // Counted over the whole run (warm-up included) for cycles per frame; the rate likewise.
    const double s = std::chrono::duration<double>(clock_type::now() - t0).count();
    const uint64_t tx = bench::tx_packets(wc) - tx0, busy = wc.busy_cycles.read() - busy0;
    bench::stop_worker(stop);
    result res;
    res.mpps = double(tx) / s / 1e6;
    res.cycles = tx != 0 ? double(busy) / double(tx) : 0;
    res.busy = 100.0 * double(busy) / (s * double(rte_get_tsc_hz()));
    res.distinct = count_bits(seen);
    return res;
}

// The source ceiling: lcore 1 moves frames in -> out, rewriting each one's label word (the
// line the worker writes), nothing else.
double run_bare(const rings& r, uint16_t in_port, uint16_t out_port, label_source& labels,
                double seconds) {
    struct args_t {
        uint16_t in, out;
        std::atomic<bool> stop{false};
    };
    static args_t a;
    a.in = in_port;
    a.out = out_port;
    a.stop = false;
    rte_eal_remote_launch(
        [](void* v) {
            auto* x = static_cast<args_t*>(v);
            rte_mbuf* pkts[32];
            while (!x->stop.load(std::memory_order_relaxed)) {
                const uint16_t n = rte_eth_rx_burst(x->in, 0, pkts, 32);
                for (uint16_t i = 0; i < n; ++i) {
                    uint8_t* f = rte_pktmbuf_mtod(pkts[i], uint8_t*) + wire::ether_header_len;
                    wire::store_be32(f, wire::load_be32(f) - 1);
                }
                const uint16_t sent = rte_eth_tx_burst(x->out, 0, pkts, n);
                rte_pktmbuf_free_bulk(pkts + sent, n - sent);
            }
            return 0;
        },
        &a, 1);
    const double rate = circulate(r, labels, seconds, nullptr);
    a.stop = true;
    rte_eal_wait_lcore(1);
    return rate / 1e6;
}

bool provision(test::call_client& client, const std::string& in, uint32_t from, uint32_t to) {
    for (uint32_t label = from; label < to; ++label) {
        callmgmt::vc_handle v = 0;
        callmgmt::party_handle p = 0;
        if (client.make(in, 0, test::call(fmt::format("{}{}", in, label), label, false),
                        test::party("p", "out", label), &v, &p) != callmgmt::status::success) {
            std::fprintf(stderr, "scale_bench: make_call %u on %s: %s\n", label, in.c_str(),
                         client.error(in).c_str());
            return false;
        }
    }
    return true;
}

size_t heap_bytes() {
    const struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"scale_bench: 16 VCs against the whole label space"};
    uint32_t vcs = (1u << 20) - first_label;
    double seconds = 3;
    int rounds = 3;
    unsigned population = 2048;
    app.add_option("--vcs", vcs, "VCs in the large table (labels 16..16+N-1)")
        ->check(CLI::Range(17u, (1u << 20) - first_label));
    app.add_option("--seconds", seconds, "length of each run (after 0.3 s of warm-up)");
    app.add_option("--rounds", rounds, "runs of each kind; medians reported");
    app.add_option("--population", population, "frames in flight")->check(CLI::Range(64u, 3072u));
    bool counted = false;
    app.add_flag("--counted", counted,
                 "per-VC and per-party counters on (metrics per_vc, per_party), a slot for each");
    CLI11_PARSE(app, argc, argv);
    log::set_threshold(log::level::warning);

    bench::start_eal("scale-bench", 2048);
    rte_mempool* pool = bench::make_pool(8191);
    auto ring = [](const char* name, unsigned size) {
        return rte_ring_create(name, size, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
    };
    rte_ring* out_t = ring("out_t", 4096);
    rings r{ring("in_r", 4096), out_t};      // the large table's loop
    rings r16{ring("small_r", 4096), out_t}; // the 16-VC table's loop
    if (!bench::make_ring_port("in", r.in, ring("in_t", 64)) ||
        !bench::make_ring_port("small", r16.in, ring("small_t", 64)) ||
        !bench::make_ring_port("out", ring("out_r", 64), out_t)) {
        std::fprintf(stderr, "scale_bench: cannot create the ports\n");
        return 1;
    }
    bench::plane bp({{"in", "net_ring_in"}, {"small", "net_ring_small"}, {"out", "net_ring_out"}},
                    pool,
                    counted ? fmt::format("[metrics]\nper_vc = true\nper_party = true\n"
                                          "max_series = {}\n",
                                          max_series_limit)
                            : "");
    test::call_client& client = bp.client();
    if (!provision(client, "small", first_label, first_label + 16)) {
        return 1;
    }
    worker& w = bp.first_worker();
    const uint16_t in_port = bp.port("in");
    const uint16_t out_port = bp.port("out");

    label_source labels;
    {
        std::vector<rte_mbuf*> frames(population);
        if (rte_pktmbuf_alloc_bulk(pool, frames.data(), population) != 0) {
            std::fprintf(stderr, "scale_bench: cannot allocate %u frames\n", population);
            return 1;
        }
        for (rte_mbuf* m : frames) {
            bench::write_mpls_header(reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, 64)),
                                     labels.next(), 64);
        }
        rte_ring_sp_enqueue_bulk(r.in, reinterpret_cast<void**>(frames.data()), population,
                                 nullptr);
    }
    std::vector<uint64_t> seen(size_t(1) << 14); // a bit per label

    const size_t heap0 = heap_bytes();
    const auto made_at = clock_type::now();
    if (!provision(client, "in", first_label, first_label + vcs)) {
        return 1;
    }
    const double make_s = std::chrono::duration<double>(clock_type::now() - made_at).count();
    const double heap_per_vc = double(heap_bytes() - heap0) / double(vcs);
    const size_t table_bytes =
        bp.control().state().find_connection("in")->entry->keys.memory_bytes();

    // Each round measures the reference (connection `small`, 16 VCs) right before the large
    // table, and the ratios are taken round by round: this VM's speed drifts by a third
    // within minutes, which a reference measured once, minutes apart, would mistake for the
    // cost of the table. The frames left in the other loop's ring when a run starts go round
    // once more through their own table (every label they carry exists there) and are moved
    // to the current loop by the main lcore; the warm-up covers it.
    std::vector<double> small_mpps, small_cycles, hot_mpps, hot_cycles, hot_ratio, all_mpps,
        all_cycles, all_busy, all_ratio, bare;
    uint64_t distinct = 0, hot_distinct = 0;
    for (int k = 0; k < rounds; ++k) {
        labels.span = 16;
        const result small = run_worker(w, r16, labels, seconds, seen);
        small_mpps.push_back(small.mpps);
        small_cycles.push_back(small.cycles);
        const result hot = run_worker(w, r, labels, seconds, seen);
        hot_mpps.push_back(hot.mpps);
        hot_cycles.push_back(hot.cycles);
        hot_ratio.push_back(hot.mpps / small.mpps);
        hot_distinct = hot.distinct;
        labels.span = vcs;
        const result all = run_worker(w, r, labels, seconds, seen);
        all_mpps.push_back(all.mpps);
        all_cycles.push_back(all.cycles);
        all_busy.push_back(all.busy);
        all_ratio.push_back(all.mpps / small.mpps);
        distinct = std::max(distinct, all.distinct);
        bare.push_back(run_bare(r, in_port, out_port, labels, seconds));
    }
    const uint64_t drops = [&] {
        uint64_t n = 0;
        for (size_t d = 0; d < drop_reason_count; ++d) {
            n += w.counters().drops[d].read();
        }
        return n;
    }();

    const double ref = median(small_mpps);
    const double ratio = median(all_ratio);
    std::printf("scale_bench: 1 worker (lcore 1), source: main lcore relabelling %u frames in "
                "flight through ring ports, 64-byte MPLS frames, 1 party per VC, per-VC and "
                "per-party counters %s; %d rounds of %.1f s, medians (ratios: of the "
                "runs of one round)\n",
                population, counted ? "on" : "off (as configured by default)", rounds, seconds);
    std::printf("%-36s %9s %13s %10s %9s\n", "", "Mpps", "cycles/frame", "VCs hit", "x 16 VCs");
    std::printf("%-36s %9.2f %13.1f %10d %9s\n", "16 VCs (table of 16, reference)", ref,
                median(small_cycles), 16, "1.000");
    std::printf("%-36s %9.2f %13.1f %10llu %9.3f\n",
                fmt::format("16 VCs hit (table of {})", vcs).c_str(), median(hot_mpps),
                median(hot_cycles), (unsigned long long)hot_distinct, median(hot_ratio));
    std::printf("%-36s %9.2f %13.1f %10llu %9.3f\n",
                fmt::format("{} VCs hit at random", vcs).c_str(), median(all_mpps),
                median(all_cycles), (unsigned long long)distinct, ratio);
    std::printf("%-36s %9.2f\n", "source ceiling (bare core, all VCs)", median(bare));
    std::printf("(tsc %.0f MHz; worker busy %.1f %% with all VCs; drops %llu; %u VCs made in %.1f "
                "s; memory per VC: %.0f bytes of heap in all (control plane records included), "
                "%.1f bytes of label index)\n",
                double(rte_get_tsc_hz()) / 1e6, median(all_busy), (unsigned long long)drops, vcs,
                make_s, heap_per_vc, double(table_bytes) / double(vcs));
    bench::summary("scale", fmt::format("{} VCs / 16 VCs{}", vcs, counted ? ", counters on" : ""),
                   ratio, 0.7);
    bench::summary("scale", "distinct VCs hit / VCs", double(distinct) / double(vcs), 0.99);
    bench::summary("scale", "heap bytes per VC", heap_per_vc, 0);
    std::fflush(stdout);
    std::_Exit(0); // a million calls need not be torn down one by one
}
