// The cost of each edge action (vocab/party_action.hh) against the core path's in the same
// run: cycles per copy on one worker core for calls of 1 and 8 parties, 64- and 1500-byte
// frames, with the core path's swap (MPLS in) and retag (VLAN in) as the references.
//
//   edge_bench [--seconds S] [--parties 1,8] [--sizes 64,1500]
//
// Set-up as fanout_bench: real EAL (lcore 0 control, idle while measuring; lcore 1 the
// worker), sources are net_null vdevs whose RX callback writes a real frame into each buffer on
// the worker's core, sinks are net_null (no-rx). Two ingress connections, MPLS (frames carry an
// IPv4 packet, or an Ethernet frame for the pseudowire calls, under label 100 + call) and VLAN
// (IPv4 under VID 100 + call); the source of the one not measured hands the worker nothing (its
// callback frees what net_null allocated, in every row alike). Every party of a call leaves
// through the sink of its action's egress media.

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstring>
#include <fmt/format.h>
#include <map>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <string>
#include <vector>

#include "base/log.hh"
#include "dataplane/wire.hh"
#include "perf/bench_support.hh"

using namespace vcplane;

namespace {

enum class form : uint8_t { mpls_ip, mpls_ethernet, vlan_ip };

// What the source writes: the active port's frames; the other port's buffers are freed.
struct edge_source {
    uint16_t active_port = UINT16_MAX;
    form shape = form::mpls_ip;
    uint32_t key = 100;
    uint32_t size = 64;
};
edge_source source;

void write_ipv4(uint8_t* ip, uint32_t len) {
    const uint8_t h[20] = {
        0x45, 0x20, uint8_t(len >> 8), uint8_t(len), 0, 0, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1, 239, 1,
        1,    1};
    std::memcpy(ip, h, sizeof h);
}

uint16_t write_frames(uint16_t port, uint16_t, rte_mbuf* pkts[], uint16_t n, uint16_t, void*) {
    if (port != source.active_port) {
        rte_pktmbuf_free_bulk(pkts, n);
        return 0;
    }
    static const uint8_t dst[6] = {2, 0, 0, 0, 0, 0xfe}, src[6] = {2, 0, 0, 0, 0, 1};
    for (uint16_t i = 0; i < n; ++i) {
        rte_mbuf* m = pkts[i];
        m->data_len = uint16_t(source.size);
        m->pkt_len = source.size;
        uint8_t* f = rte_pktmbuf_mtod(m, uint8_t*);
        wire::write_macs(f, dst, src);
        switch (source.shape) {
        case form::mpls_ip:
            wire::store_be16(f + 12, wire::ethertype_mpls);
            wire::store_be32(f + 14, wire::make_mpls_entry(source.key, 0, true, 64));
            write_ipv4(f + 18, source.size - 18);
            break;
        case form::mpls_ethernet:
            wire::store_be16(f + 12, wire::ethertype_mpls);
            wire::store_be32(f + 14, wire::make_mpls_entry(source.key, 0, true, 64));
            wire::write_macs(f + 18, dst, src);
            wire::store_be16(f + 30, 0x0800);
            write_ipv4(f + 32, source.size - 32);
            break;
        case form::vlan_ip:
            wire::store_be16(f + 12, wire::ethertype_vlan);
            wire::store_be16(f + 14, uint16_t(source.key));
            wire::store_be16(f + 16, 0x0800);
            write_ipv4(f + 18, source.size - 18);
            break;
        }
    }
    return n;
}

struct action_case {
    const char* action;
    const char* in;   // ingress connection
    const char* out;  // the sink its parties leave through
    uint32_t out_key; // party i gets out_key + i (0: none)
    bool pseudowire;
    const char* reference; // the core action it is compared with
};

const action_case cases[] = {
    {"swap", "in_mpls", "sink_mpls", 1000, false, "swap"},
    {"pop", "in_mpls", "sink_port", 0, false, "swap"},
    {"pop_tag", "in_mpls", "sink_vlan", 1000, false, "swap"},
    {"decap", "in_mpls", "sink_port", 0, true, "swap"},
    {"decap_tag", "in_mpls", "sink_vlan", 1000, true, "swap"},
    {"retag", "in_vlan", "sink_vlan", 1000, false, "retag"},
    {"push", "in_vlan", "sink_mpls", 1000, false, "retag"},
    {"encap", "in_vlan", "sink_mpls", 1000, true, "retag"},
    {"untag", "in_vlan", "sink_port", 0, false, "retag"},
};

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"edge_bench: each edge action's cost against the core path's, same run"};
    double seconds = 2;
    std::vector<unsigned> fanouts{1, 8};
    std::vector<unsigned> sizes{64, 1500};
    app.add_option("--seconds", seconds, "length of each run (after 0.3 s of warm-up)");
    app.add_option("--parties", fanouts, "fan-outs (1..64)")
        ->delimiter(',')
        ->check(CLI::Range(1u, 64u));
    app.add_option("--sizes", sizes, "frame sizes (64..2000)")
        ->delimiter(',')
        ->check(CLI::Range(64u, 2000u));
    CLI11_PARSE(app, argc, argv);
    log::set_threshold(log::level::warning);

    bench::start_eal(
        "edge-bench", 1024,
        {"net_null0,no-rx=1", "net_null1", "net_null2,no-rx=1", "net_null3,no-rx=1", "net_null4"});
    rte_mempool* pool = bench::make_pool(65535);
    bench::plane bp(R"([eal]
lcores = [0, 1]
[connections.sink_mpls]
device = "net_null0"
[connections.in_mpls]
device = "net_null1"
[connections.sink_vlan]
device = "net_null2"
media = "vlan"
[connections.sink_port]
device = "net_null3"
media = "port"
[connections.in_vlan]
device = "net_null4"
media = "vlan"
)",
                    pool);
    test::call_client& client = bp.client();
    // One call per (action, fan-out), keyed 100 + its index.
    uint32_t next_key = 100;
    struct made {
        const action_case* c;
        unsigned parties;
        uint32_t key;
    };
    std::vector<made> calls;
    for (const action_case& c : cases) {
        for (unsigned n : fanouts) {
            callmgmt::call_spec spec = test::call(fmt::format("{}{}", c.action, n), next_key);
            if (c.pseudowire) {
                spec.encap.payload = payload_kind::ethernet;
            }
            auto party_for = [&](unsigned i) {
                party_spec p = test::party(fmt::format("p{}", i), c.out,
                                           c.out_key != 0 ? c.out_key + i : 0, uint8_t(i + 1));
                if (c.pseudowire && std::strcmp(c.in, "in_mpls") == 0) {
                    p.next_hop = {}; // decap: the inner frame's addresses
                }
                return p;
            };
            callmgmt::vc_handle v = 0;
            callmgmt::party_handle first = 0;
            if (client.make(c.in, 0, spec, party_for(0), &v, &first) != callmgmt::status::success) {
                std::fprintf(stderr, "edge_bench: make_call %s: %s\n", c.action,
                             client.error(c.in).c_str());
                return 1;
            }
            for (unsigned i = 1; i < n; ++i) {
                callmgmt::party_handle p = 0;
                if (client.add(c.in, v, party_for(i), &p) != callmgmt::status::success) {
                    std::fprintf(stderr, "edge_bench: add_party: %s\n", client.error(c.in).c_str());
                    return 1;
                }
            }
            calls.push_back({&c, n, next_key++});
        }
    }
    for (const char* in : {"in_mpls", "in_vlan"}) {
        if (rte_eth_add_rx_callback(bp.port(in), 0, write_frames, nullptr) == nullptr) {
            std::fprintf(stderr, "edge_bench: cannot add an RX callback\n");
            return 1;
        }
    }
    worker& w = bp.first_worker();
    std::printf("edge_bench: 1 worker (lcore 1), sources net_null1 (MPLS) and net_null4 (VLAN) "
                "with frame-writing RX callbacks on lcore 1, sinks net_null (no-rx); %.1f s per "
                "run\n",
                seconds);
    std::printf("%-10s %7s %6s %11s %12s %12s\n", "action", "parties", "bytes", "copies Mpps",
                "cycles/copy", "x reference");
    std::map<std::string, double> cycles; // "swap/1/64" -> cycles per copy
    for (unsigned size : sizes) {
        for (const made& m : calls) {
            source.active_port = bp.port(m.c->in);
            source.key = m.key;
            source.size = size;
            source.shape = std::strcmp(m.c->in, "in_vlan") == 0 ? form::vlan_ip
                           : m.c->pseudowire                    ? form::mpls_ethernet
                                                                : form::mpls_ip;
            const bench::window win = bench::run_worker_for(w, seconds);
            const uint64_t copies = win.tx_total();
            const double per_copy = copies != 0 ? double(win.busy_cycles) / double(copies) : 0;
            const std::string at = fmt::format("/{}/{}", m.parties, size);
            cycles[m.c->action + at] = per_copy;
            const double ref = cycles[m.c->reference + at];
            std::printf("%-10s %7u %6u %11.2f %12.1f %12.3f\n", m.c->action, m.parties, size,
                        win.mpps(copies), per_copy, ref > 0 ? per_copy / ref : 0.0);
            std::fflush(stdout);
        }
    }
    std::printf("(tsc %.0f MHz; x reference: cycles per copy / the same fan-out and size's %s)\n",
                double(rte_get_tsc_hz()) / 1e6, "swap (MPLS in) or retag (VLAN in)");
    for (const made& m : calls) {
        if (m.parties == fanouts.front() && std::strcmp(m.c->action, m.c->reference) != 0) {
            for (unsigned size : sizes) {
                const std::string at = fmt::format("/{}/{}", m.parties, size);
                const double ref = cycles[m.c->reference + at];
                bench::summary("edge",
                               fmt::format("{} B, {} part{}: {} cycles per copy / {}", size,
                                           m.parties, m.parties == 1 ? "y" : "ies", m.c->action,
                                           m.c->reference),
                               ref > 0 ? cycles[m.c->action + at] / ref : 0, 0);
            }
        }
    }
    std::fflush(stdout);
    std::_Exit(0);
}
