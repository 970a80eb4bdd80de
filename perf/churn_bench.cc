// Churn benchmark (issue 4): add-party + drop-party pairs per second on the control thread
// while a worker forwards, with the drop's completion latency, the grace-period latency, and the
// loss seen by the parties of an unaffected call. The reference, measured in the same run with
// the same set-up, is the same loop without churn: the ratio of the worker's forwarding rate with
// churn to without it shows what churn costs the dataplane. Runs with and without churn
// alternate (--rounds pairs, the order swapped every round), and the ratio reported is the
// median of the rounds' ratios: this VM's speed drifts by more than the 5 % the target allows
// between two runs far apart.
//
//   churn_bench [--seconds S] [--rounds R] [--pairs-per-round N] [--pairs-per-second P]
//               [--call-parties N] [--make-close] [--no-background]
//
// --make-close: the churn is make-call + close-call pairs (one party each) instead.
// --call-parties: the churned call holds this many parties (1..1023) while one more is added
// and dropped, so that the cost of a change to a large call shows.
//
// Set-up: real EAL (lcore 0 control, lcore 1 worker), ring ports in/a/b/sink, and (unless
// --no-background) a net_null port whose endless zero frames keep the worker polling at full
// speed (they are dropped at classification). The control thread injects sequence-numbered
// frames of the unaffected call (label 1000 -> parties a, b) between rounds of churn on another
// call (label 2000 -> parties on 'sink'), runs grace-period completions, and checks every frame
// that a and b receive.

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <fmt/format.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <unistd.h>
#include <utility>

#include "base/log.hh"
#include "control/control_plane.hh"
#include "dataplane/wire.hh"
#include "perf/bench_support.hh"
#include "port/eal.hh"
#include "port/ports.hh"
#include "support/call_client.hh"
#include "support/control_loop.hh"

using namespace vcplane;
using clock_type = std::chrono::steady_clock;

namespace {

struct ring_pair {
    rte_ring* rx;
    rte_ring* tx;
};

ring_pair ring_port(const std::string& name) {
    ring_pair p{rte_ring_create((name + "_r").c_str(), 16384, 0, RING_F_SP_ENQ | RING_F_SC_DEQ),
                rte_ring_create((name + "_t").c_str(), 16384, 0, RING_F_SP_ENQ | RING_F_SC_DEQ)};
    if (p.rx == nullptr || p.tx == nullptr ||
        rte_eth_from_rings(name.c_str(), &p.rx, 1, &p.tx, 1, 0) < 0) {
        throw std::runtime_error("ring port " + name);
    }
    return p;
}

double percentile(std::vector<double> v, double q) {
    if (v.empty()) {
        return 0;
    }
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, size_t(q * double(v.size())))];
}

// The benchmark's application: a call-management client that keeps only what the measurement
// needs, so that the control thread's time is the switch's and not a test client's bookkeeping
// (support/call_client.hh keeps every completion as text). A request that pends is given a slot
// as its client context: the slot holds its start time (TSC) until the completion, which must
// come exactly once and with SUCCESS (docs/contracts.md §5.6); anything else is counted.
class churn_client final : public callmgmt::client_dispatch {
public:
    using cstatus = callmgmt::status;

    churn_client(nmr::registrar& reg, std::function<void()> pump)
        : bindings_(reg, *this, "churn-bench")
        , pump_(std::move(pump))
        , started_(slots, 0) {
        bindings_.register_client();
        // Reserved: growing it inside a completion would delay the completions after it.
        latencies_.reserve(latencies_reserved);
        in_ = bindings_.find("in");
        if (in_ == nullptr) {
            throw std::runtime_error("no call manager on connection 'in'");
        }
    }
    ~churn_client() override {
        if (bindings_.deregister() == nmr::status::pending) {
            bindings_.wait_for_deregister(pump_);
        }
    }

    cstatus make(const callmgmt::call_spec& c, const party_spec& first, callmgmt::vc_handle* vc,
                 callmgmt::party_handle* p, bool timed = false) {
        return request([&](auto& d, void* pb) {
            return d.make_call(pb, 0, c, first, timed ? next_slot() : nullptr, nullptr, vc, p);
        });
    }
    cstatus add(callmgmt::vc_handle vc, const party_spec& p, callmgmt::party_handle* out,
                bool timed = false) {
        return request([&](auto& d, void* pb) {
            return d.add_party(pb, vc, p, timed ? next_slot() : nullptr, out);
        });
    }
    cstatus drop(callmgmt::party_handle p) {
        return request([&](auto& d, void* pb) { return d.drop_party(pb, p, {}); });
    }
    cstatus close(callmgmt::vc_handle vc, callmgmt::party_handle last) {
        return request([&](auto& d, void* pb) { return d.close_call(pb, vc, last, {}); });
    }
    std::string error() const { return in_->ref.dispatch->last_error(in_->ref.provider_binding); }

    // Timed requests started and not completed.
    uint64_t outstanding() const noexcept { return issued_ - completed_; }
    // Completions that broke a rule: not SUCCESS, twice for one request, or for no timed one.
    uint64_t broken() const noexcept { return broken_; }
    // Seconds from each timed request to its completion, since the last call.
    std::vector<double> take_latencies() {
        std::vector<double> taken = latencies_;
        latencies_.clear();
        return taken;
    }

    void drop_party_complete(void* cb, cstatus s, callmgmt::party_handle, void* ctx) override {
        complete(s, ctx);
        bindings_.completed(cb);
    }
    void close_call_complete(void* cb, cstatus s, callmgmt::vc_handle, callmgmt::party_handle,
                             void* ctx) override {
        complete(s, ctx);
        bindings_.completed(cb);
    }
    void incoming_close_call(void*, cstatus, callmgmt::vc_handle, void*) override { ++broken_; }
    void incoming_drop_party(void*, cstatus, callmgmt::party_handle, void*) override { ++broken_; }

private:
    static constexpr size_t slots = size_t(1) << 20;              // reused in turn
    static constexpr size_t latencies_reserved = size_t(1) << 24; // 8 s at 2 M pairs/s

    template <typename F>
    cstatus request(F&& f) {
        return bindings_.request(*in_, std::forward<F>(f));
    }
    void* next_slot() {
        const size_t at = size_t(issued_++ % slots);
        if (started_[at] != 0) { // its request, slots requests ago, has not completed
            throw std::runtime_error("a timed request's slot is still in use");
        }
        started_[at] = rte_rdtsc();
        return reinterpret_cast<void*>(uintptr_t(at) + 1); // never nullptr
    }
    void complete(cstatus s, void* ctx) {
        const uintptr_t at = reinterpret_cast<uintptr_t>(ctx);
        if (s != cstatus::success || at == 0 || at > slots || started_[at - 1] == 0) {
            ++broken_;
            return;
        }
        latencies_.push_back(double(rte_rdtsc() - started_[at - 1]) / double(rte_get_tsc_hz()));
        started_[at - 1] = 0;
        ++completed_;
    }

    callmgmt::client_bindings bindings_;
    std::function<void()> pump_;
    callmgmt::client_bindings::binding* in_ = nullptr;
    std::vector<uint64_t> started_; // TSC at the request, 0 when the slot is free
    uint64_t issued_ = 0;
    uint64_t completed_ = 0;
    uint64_t broken_ = 0;
    std::vector<double> latencies_;
};

struct result {
    double seconds = 0;
    uint64_t pairs = 0;
    uint64_t injected = 0;
    uint64_t received[2] = {0, 0};
    uint64_t out_of_order = 0;
    uint64_t forwarded = 0;    // frames the worker transmitted (all ports)
    uint64_t received_all = 0; // frames the worker received (all ports, the load included)
    uint64_t drops[drop_reason_count] = {};
    uint64_t unfinished = 0; // timed requests without a completion after the drain
    uint64_t broken = 0;     // completions that broke a contract rule
    std::vector<double> drop_latency;
    std::vector<double> grace_latency; // flush -> callbacks run
    std::vector<double> grace_sync;    // flush -> synchronize_rcu() returned

    result& operator+=(const result& r) {
        seconds += r.seconds;
        pairs += r.pairs;
        injected += r.injected;
        received[0] += r.received[0];
        received[1] += r.received[1];
        out_of_order += r.out_of_order;
        unfinished += r.unfinished;
        broken += r.broken;
        forwarded += r.forwarded;
        received_all += r.received_all;
        for (size_t d = 0; d < drop_reason_count; ++d) {
            drops[d] += r.drops[d];
        }
        drop_latency.insert(drop_latency.end(), r.drop_latency.begin(), r.drop_latency.end());
        grace_latency.insert(grace_latency.end(), r.grace_latency.begin(), r.grace_latency.end());
        grace_sync.insert(grace_sync.end(), r.grace_sync.begin(), r.grace_sync.end());
        return *this;
    }
};

result run(control_plane& plane, test::control_loop& ctl, ring_pair in, ring_pair a, ring_pair b,
           ring_pair sink, rte_mempool* pool, double seconds, unsigned pairs_per_round,
           double pairs_per_second, bool churn, double rate, unsigned call_parties,
           bool make_close) {
    result r;
    const auto pump = [&] { ctl.pump(0); }; // never wait: the loop must keep injecting
    rcu_grace_periods& gp = ctl.gp;

    churn_client client(plane.registrar(), pump);
    callmgmt::vc_handle steady = 0, churned = 0;
    callmgmt::party_handle pa = 0, pb = 0, anchor = 0;
    if (client.make(test::call("steady", 1000), test::party("a", "a", 2001), &steady, &pa) !=
            callmgmt::status::success ||
        client.add(steady, test::party("b", "b", 2002), &pb) != callmgmt::status::success ||
        client.make(test::call("churned", 2000), test::party("anchor", "sink", 3000), &churned,
                    &anchor) != callmgmt::status::success) {
        throw std::runtime_error("cannot make the benchmark's calls: " + client.error());
    }
    for (unsigned i = 1; i < call_parties; ++i) {
        callmgmt::party_handle p = 0;
        if (client.add(churned, test::party(fmt::format("k{}", i), "sink", 200000 + i), &p) !=
            callmgmt::status::success) {
            throw std::runtime_error("add_party: " + client.error());
        }
    }
    // What the application builds per request, reused: a name of its own for every party and
    // call (short enough for the string's own buffer, as most names are).
    party_spec churn_party = test::party("", "sink", 0);
    party_spec closing_party = test::party("m0", "sink", 5000);
    callmgmt::call_spec churn_call = test::call("", 0);
    char name[16];
    const auto set_name = [&name](std::string& to, char prefix, uint32_t serial) {
        name[0] = prefix;
        const auto end = std::to_chars(name + 1, name + sizeof name, serial);
        to.assign(name, end.ptr);
    };
    uint32_t next_seq = 0;
    uint32_t expect[2] = {0, 0};
    ring_pair outs[2] = {a, b};
    const worker_counters& wc = plane.workers()[0]->counters();
    uint64_t tx_before = 0, rx_before = 0, drops_before[drop_reason_count];
    for (uint16_t p = 0; p < RTE_MAX_ETHPORTS; ++p) {
        tx_before += wc.port[p].tx_packets.read();
        rx_before += wc.port[p].rx_packets.read();
    }
    for (size_t d = 0; d < drop_reason_count; ++d) {
        drops_before[d] = wc.drops[d].read();
    }
    gp.take_latencies();
    const auto start = clock_type::now();
    const auto end = start + std::chrono::duration<double>(seconds);
    rte_mbuf* burst[32];
    uint32_t party_serial = 0;
    while (clock_type::now() < end) {
        // Sequence-numbered frames for the unaffected call, paced at `rate` in both runs.
        const double due = rate * std::chrono::duration<double>(clock_type::now() - start).count();
        if (double(r.injected) + 32 <= due && rte_ring_free_count(in.rx) >= 32 &&
            rte_pktmbuf_alloc_bulk(pool, burst, 32) == 0) {
            for (auto* m : burst) {
                auto* f = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, 64));
                std::memset(f, 0, 64);
                const uint8_t dst[6] = {2, 0, 0, 0, 0, 0xfe}, src[6] = {2, 0, 0, 0, 0, 1};
                wire::write_macs(f, dst, src);
                wire::store_be16(f + 12, wire::ethertype_mpls);
                wire::store_be32(f + 14, wire::make_mpls_entry(1000, 0, true, 64));
                wire::store_be32(f + 18, next_seq++);
            }
            rte_ring_sp_enqueue_bulk(in.rx, reinterpret_cast<void**>(burst), 32, nullptr);
            r.injected += 32;
        }
        // Churn on the other call: add a party, drop it again.
        // Paced (--pairs-per-second) or as fast as the control thread goes.
        const double pairs_due =
            pairs_per_second > 0
                ? pairs_per_second *
                      std::chrono::duration<double>(clock_type::now() - start).count()
                : 1e300;
        for (unsigned i = 0;
             churn && make_close && i < pairs_per_round && double(r.pairs) < pairs_due; ++i) {
            // A call made and closed again, on a label of its own (a closing call keeps its
            // label until its grace period ends).
            callmgmt::vc_handle v = 0;
            callmgmt::party_handle p = 0;
            const uint32_t serial = party_serial++;
            set_name(churn_call.name, 'm', serial);
            churn_call.key = 300000 + serial % 100000;
            if (client.make(churn_call, closing_party, &v, &p, true) != callmgmt::status::success) {
                throw std::runtime_error("make_call: " + client.error());
            }
            if (client.close(v, p) != callmgmt::status::pending) {
                throw std::runtime_error("close_call: " + client.error());
            }
            ++r.pairs;
        }
        for (unsigned i = 0;
             churn && !make_close && i < pairs_per_round && double(r.pairs) < pairs_due; ++i) {
            callmgmt::party_handle p = 0;
            set_name(churn_party.name, 'c', party_serial);
            churn_party.key = 4000 + party_serial % 100000;
            ++party_serial;
            if (client.add(churned, churn_party, &p, true) != callmgmt::status::success) {
                throw std::runtime_error("add_party: " + client.error());
            }
            if (client.drop(p) != callmgmt::status::pending) {
                throw std::runtime_error("drop_party: " + client.error());
            }
            ++r.pairs;
        }
        pump();
        // What the unaffected parties got.
        for (int k = 0; k < 2; ++k) {
            void* objs[256];
            unsigned n;
            while ((n = rte_ring_sc_dequeue_burst(outs[k].tx, objs, 256, nullptr)) != 0) {
                for (unsigned i = 0; i < n; ++i) {
                    auto* m = static_cast<rte_mbuf*>(objs[i]);
                    const uint32_t seq = wire::load_be32(rte_pktmbuf_mtod(m, uint8_t*) + 18);
                    r.out_of_order += seq != expect[k];
                    expect[k] = seq + 1;
                    ++r.received[k];
                    rte_pktmbuf_free(m);
                }
            }
        }
        void* junk[256];
        unsigned n;
        while ((n = rte_ring_sc_dequeue_burst(sink.tx, junk, 256, nullptr)) != 0) {
            rte_pktmbuf_free_bulk(reinterpret_cast<rte_mbuf**>(junk), n);
        }
    }
    r.seconds = std::chrono::duration<double>(clock_type::now() - start).count();
    r.drop_latency = client.take_latencies(); // those completed while measuring
    uint64_t tx_after = 0, rx_after = 0;
    for (uint16_t p = 0; p < RTE_MAX_ETHPORTS; ++p) {
        tx_after += wc.port[p].tx_packets.read();
        rx_after += wc.port[p].rx_packets.read();
    }
    r.forwarded = tx_after - tx_before;
    r.received_all = rx_after - rx_before;
    for (size_t d = 0; d < drop_reason_count; ++d) {
        r.drops[d] = wc.drops[d].read() - drops_before[d];
    }
    // Let the last frames and completions arrive.
    for (int i = 0; i < 2000 && (client.outstanding() != 0 || r.received[0] < r.injected ||
                                 r.received[1] < r.injected);
         ++i) {
        pump();
        for (int k = 0; k < 2; ++k) {
            void* objs[256];
            unsigned m;
            while ((m = rte_ring_sc_dequeue_burst(outs[k].tx, objs, 256, nullptr)) != 0) {
                for (unsigned i = 0; i < m; ++i) {
                    auto* mb = static_cast<rte_mbuf*>(objs[i]);
                    const uint32_t seq = wire::load_be32(rte_pktmbuf_mtod(mb, uint8_t*) + 18);
                    r.out_of_order += seq != expect[k];
                    expect[k] = seq + 1;
                    ++r.received[k];
                    rte_pktmbuf_free(mb);
                }
            }
        }
        usleep(500);
    }
    r.unfinished = client.outstanding();
    r.broken = client.broken();
    for (const auto& l : gp.take_latencies()) {
        r.grace_latency.push_back(l.completed);
        r.grace_sync.push_back(l.synchronized);
    }
    return r;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"churn_bench: add+drop party pairs per second under forwarding load"};
    double seconds = 5;
    unsigned rounds = 3;
    unsigned pairs_per_round = 64;
    bool no_background = false;
    double rate = 500000;
    app.add_option("--seconds", seconds, "measuring time per run");
    app.add_option("--rounds", rounds, "pairs of runs without and with churn (order alternating)")
        ->check(CLI::Range(1u, 100u));
    app.add_option("--pairs-per-round", pairs_per_round, "add+drop pairs between two polls");
    double pairs_per_second = 0;
    app.add_option("--pairs-per-second", pairs_per_second,
                   "pace the churn at this rate (0: as fast as it goes)");
    app.add_flag("--no-background", no_background, "no net_null load on the worker");
    app.add_option("--rate", rate, "frames per second of the unaffected call (both runs)");
    unsigned call_parties = 1;
    app.add_option("--call-parties", call_parties, "parties of the churned call (1..1023)")
        ->check(CLI::Range(1u, 1023u));
    bool make_close = false;
    app.add_flag("--make-close", make_close,
                 "churn make-call + close-call pairs instead of add + drop party");
    CLI11_PARSE(app, argc, argv);
    log::set_threshold(log::level::warning);

    std::vector<std::string> eal = {"churn_bench",
                                    "-l",
                                    "0-1",
                                    "--no-huge",
                                    "-m",
                                    "1024",
                                    "--no-pci",
                                    "--no-shconf",
                                    "--file-prefix",
                                    "churn" + std::to_string(getpid()),
                                    "--log-level=error"};
    if (!no_background) {
        eal.push_back("--vdev=net_null0");
    }
    eal_start(eal);
    rcu_register_thread();
    rcu_thread_offline();
    rte_mempool* pool = bench::make_pool(65535);
    ring_pair in = ring_port("in"), a = ring_port("a"), b = ring_port("b"),
              sink = ring_port("sink");

    std::string cfg_text = R"([eal]
lcores = [0, 1]
[connections.in]
device = "net_ring_in"
[connections.a]
device = "net_ring_a"
[connections.b]
device = "net_ring_b"
[connections.sink]
device = "net_ring_sink"
)";
    if (!no_background) {
        cfg_text += "[connections.load]\ndevice = \"net_null0\"\n";
    }
    const auto cfg = parse_config_string(cfg_text, "churn.toml");
    test::control_loop ctl;
    control_plane plane(cfg, ctl.gp, pool, 1, ctl.post());
    plane.start();
    std::atomic<bool> stop;
    bench::launch_worker(*plane.workers()[0], stop);

    const auto per_s = [](const result& r, uint64_t n) { return double(n) / r.seconds; };
    result ref, churn; // every round's runs added up
    std::vector<double> ratios;
    for (unsigned round = 0; round < rounds; ++round) {
        result runs[2];
        const bool churn_first = round % 2 == 1;
        for (bool churning : {churn_first, !churn_first}) {
            runs[churning] = run(plane, ctl, in, a, b, sink, pool, seconds, pairs_per_round,
                                 pairs_per_second, churning, rate, call_parties, make_close);
        }
        ratios.push_back(per_s(runs[1], runs[1].received_all) /
                         per_s(runs[0], runs[0].received_all));
        ref += runs[0];
        churn += runs[1];
    }

    plane.stop([&] { ctl.pump(); });
    bench::stop_worker(stop);

    std::printf("churn_bench: %u rounds of two %.1f s runs (without and with churn), %u pairs "
                "per poll round%s, unaffected call paced at %.0f frames/s, background load %s\n",
                rounds, seconds, pairs_per_round,
                pairs_per_second > 0 ? fmt::format(" (paced at {:.0f}/s)", pairs_per_second).c_str()
                                     : "",
                rate, no_background ? "off" : "net_null at full speed");
    std::printf("%-40s %14s %14s\n", "", "reference", "with churn");
    std::printf("%-40s %14s %14.0f\n", "add+drop pairs per second", "-", per_s(churn, churn.pairs));
    std::printf("%-40s %14.0f %14.0f\n", "worker frames received/s (all ports)",
                per_s(ref, ref.received_all), per_s(churn, churn.received_all));
    const double ratio_rx = bench::median(ratios);
    std::string each;
    for (double r : ratios) {
        each += fmt::format(" {:.3f}", r);
    }
    std::printf("%-40s %14s %14.3f  (rounds:%s)\n", "  ratio churn/reference, median", "", ratio_rx,
                each.c_str());
    std::printf("%-40s %14.0f %14.0f\n", "unaffected call: frames injected/s",
                per_s(ref, ref.injected), per_s(churn, churn.injected));
    std::printf("%-40s %14.0f %14.0f\n", "worker frames transmitted/s", per_s(ref, ref.forwarded),
                per_s(churn, churn.forwarded));
    for (int k = 0; k < 2; ++k) {
        std::printf("unaffected party %c: frames lost %18lld %14lld\n", 'a' + k,
                    (long long)(ref.injected - ref.received[k]),
                    (long long)(churn.injected - churn.received[k]));
    }
    std::printf("%-40s %14llu %14llu\n", "out-of-order or duplicate frames",
                (unsigned long long)ref.out_of_order, (unsigned long long)churn.out_of_order);
    for (size_t d = 0; d < drop_reason_count; ++d) {
        if (d == size_t(drop_reason::wrong_ethertype) ||
            (ref.drops[d] == 0 && churn.drops[d] == 0)) {
            continue; // wrong_ethertype: the net_null load, dropped on purpose
        }
        std::printf("worker drops %-27s %14llu %14llu\n", drop_reason_name(drop_reason(d)),
                    (unsigned long long)ref.drops[d], (unsigned long long)churn.drops[d]);
    }
    std::printf("%-40s %14s %14.1f\n", "drop completion latency p50 (us)", "-",
                percentile(churn.drop_latency, 0.5) * 1e6);
    std::printf("%-40s %14s %14.1f\n", "drop completion latency p99 (us)", "-",
                percentile(churn.drop_latency, 0.99) * 1e6);
    std::printf("%-40s %14.1f %14.1f\n", "grace period p50 (us)",
                percentile(ref.grace_latency, 0.5) * 1e6,
                percentile(churn.grace_latency, 0.5) * 1e6);
    std::printf("%-40s %14.1f %14.1f\n", "grace period p99 (us)",
                percentile(ref.grace_latency, 0.99) * 1e6,
                percentile(churn.grace_latency, 0.99) * 1e6);
    std::printf("%-40s %14.1f %14.1f\n", "  of which synchronize_rcu, p99 (us)",
                percentile(ref.grace_sync, 0.99) * 1e6, percentile(churn.grace_sync, 0.99) * 1e6);
    std::printf("%-40s %14zu %14zu\n", "grace periods", ref.grace_latency.size(),
                churn.grace_latency.size());
    const bool lossless = churn.received[0] == churn.injected &&
                          churn.received[1] == churn.injected && churn.out_of_order == 0;
    std::printf("verdict: %s\n", lossless ? "zero loss, zero duplicates on the unaffected call"
                                          : "LOSS or DUPLICATES on the unaffected call");
    // Every drop (or close) pended and must complete exactly once, with SUCCESS.
    const bool completions_right =
        churn.unfinished == 0 && churn.broken == 0 && ref.unfinished == 0 && ref.broken == 0;
    std::printf("verdict: %s (%llu without completion, %llu broken)\n",
                completions_right ? "every pending request completed once, with SUCCESS"
                                  : "COMPLETIONS MISSING or BROKEN",
                (unsigned long long)churn.unfinished, (unsigned long long)churn.broken);
    if (pairs_per_second > 0) {
        // Paced runs reach the pace within rounding: 0.99 is the target's tolerance.
        bench::summary("churn", fmt::format("add+drop pairs per second / {:.0f}", pairs_per_second),
                       per_s(churn, churn.pairs) / pairs_per_second, 0.99);
    } else if (make_close) {
        bench::summary("churn", "unpaced make+close call pairs per second / 100 000",
                       per_s(churn, churn.pairs) / 1e5, 0);
    } else {
        // Unpaced: the ceiling, against the targets (2 M/s on a small call, 200 000/s on one
        // of 1024 parties; none in between).
        const double target = call_parties == 1 ? 2e6 : call_parties >= 1023 ? 2e5 : 0;
        bench::summary("churn",
                       fmt::format("unpaced add+drop pairs per second on a {}-party call / {:.0f}",
                                   call_parties + 1, target > 0 ? target : 1e5),
                       per_s(churn, churn.pairs) / (target > 0 ? target : 1e5),
                       target > 0 ? 1.0 : 0);
    }
    bench::summary("churn", "unaffected call lossless, in order, no duplicates (1 = yes)",
                   lossless ? 1 : 0, 1.0);
    bench::summary("churn", "every drop or close completed once, SUCCESS (1 = yes)",
                   completions_right ? 1 : 0, 1.0);
    bench::summary("churn", "worker rate with churn / without", ratio_rx, 0.95);
    bench::summary("churn", "grace period p50 under churn (us)",
                   percentile(churn.grace_latency, 0.5) * 1e6, 0);
    // The tail's target (200 us for grace periods and drop completions) is the small call's,
    // paced and unpaced; a 1024-party call or make + close is reported as it is.
    const double p99_grace = percentile(churn.grace_latency, 0.99) * 1e6;
    const double p99_drop = percentile(churn.drop_latency, 0.99) * 1e6;
    // Where the tail is: the helper's synchronize_rcu (wake-up and readers), or the wait for
    // the control loop to run the completions.
    bench::summary("churn", "grace period p99, synchronize_rcu alone (us)",
                   percentile(churn.grace_sync, 0.99) * 1e6, 0);
    if (call_parties == 1 && !make_close) {
        bench::summary_at_most("churn", "grace period p99 under churn (us)", p99_grace, 200);
        bench::summary_at_most("churn", "drop completion p99 under churn (us)", p99_drop, 200);
    } else {
        bench::summary("churn", "grace period p99 under churn (us)", p99_grace, 0);
        bench::summary("churn", "drop completion p99 under churn (us)", p99_drop, 0);
    }
    return lossless ? 0 : 1;
}
