// The switch's own operations: what it runs (status, connections, calls), its counters
// (stats) and reload.
#include <rte_cycles.h>

#include "daemon/protocol.hh"
#include "daemon/request_handlers.hh"
#include "daemon/session.hh"
#include "daemon/session_host.hh"
#include "vcplane_version.hh"

namespace vcplane {
namespace {

using namespace protocol;
using nsp::wsa;

std::optional<reply> status(request& r) {
    const control_plane& plane = r.srv.plane();
    const auto snap = plane.snapshot(false);
    reply out = wsa_reply(wsa::no_error);
    out["version"] = VCPLANE_VERSION;
    out["connections"] = plane.connections().connections().size();
    out["unmanaged_ports"] = plane.connections().unmanaged().size();
    out["calls"] = snap->calls;
    out["parties"] = snap->parties;
    out["calls_waiting"] = snap->calls_waiting;
    out["leaving"] = plane.config_provisioner().leaving();
    out["sessions"] = r.srv.sessions();
    out["lookups"] = r.srv.names().lookups();
    out["services"] = r.srv.names().services();
    out["grace_pending"] = snap->grace_pending;
    json pools = json::array();
    for (const auto& p : plane.pool_fills()) {
        pools.push_back({{"name", p.name}, {"size", p.size}, {"available", p.available}});
    }
    out["mbuf_pools"] = pools;
    return out;
}

std::optional<reply> connections(request& r) {
    const control_plane& plane = r.srv.plane();
    json list = json::array(), unmanaged = json::array();
    for (const auto& c : plane.connections().connections()) {
        list.push_back({{"name", c.name},
                        {"device", c.port.device},
                        {"port", c.port.port},
                        {"mac", format_mac(c.port.mac)},
                        {"state", cm::state_name(c.st)},
                        {"claimed", c.out_of_band}});
    }
    for (const auto& u : plane.connections().unmanaged()) {
        unmanaged.push_back(
            {{"device", u.port.device}, {"mac", format_mac(u.port.mac)}, {"reason", u.reason}});
    }
    reply out = wsa_reply(wsa::no_error);
    out["connections"] = list;
    out["unmanaged"] = unmanaged;
    return out;
}

// A call as the calls view shows it; a party of the file's that the file no longer names, and
// whose removal a call manager refused, is "leaving" (provisioner::leaving).
json call_of(const std::string& connection, const call_manager::call_info& c,
             const provisioner& file) {
    const bool files = c.owner == file.module_name();
    json parties = json::array();
    for (size_t i = 0; i < c.parties.size(); ++i) {
        const auto& [h, p] = c.parties[i];
        parties.push_back({{"party", h},
                           {"name", p.name},
                           {"connection", p.connection},
                           {"key", p.key},
                           {"action", party_action_name(c.actions[i])},
                           {"next_hop", usable_next_hop(p.next_hop) ? format_mac(p.next_hop) : ""},
                           {"leaving", files && file.is_leaving(c.name, p.name)}});
    }
    return {{"vc", c.vc},
            {"name", c.name},
            {"connection", connection},
            {"key", c.key},
            {"owner", c.owner},
            {"multipoint", c.multipoint},
            {"sustained_rate", c.flow.sustained_rate},
            {"peak_rate", c.flow.peak_rate},
            {"burst", c.flow.burst},
            {"fair", c.flow.fair},
            {"payload", name_of(c.encap.payload)},
            {"control_word", c.encap.control_word},
            {"ttl", name_of(c.encap.ttl)},
            {"parties", parties}};
}

std::optional<reply> calls(request& r) {
    json list = json::array();
    for (const auto& [conn, m] : r.srv.plane().call_managers()) {
        for (const auto& c : m->calls()) {
            list.push_back(call_of(conn, c, r.srv.plane().config_provisioner()));
        }
    }
    reply out = wsa_reply(wsa::no_error);
    out["calls"] = list;
    return out;
}

// Every counter a live view needs, as totals since the start: a client takes two readings and
// divides their difference by the TSC cycles between them (vcplanectl top). Worker counters
// are summed per worker here, and per port as the metrics scrape sums them; ethdev counters are
// read now, not from the once-a-second cache, so that two readings a second apart never see
// the same value.
std::optional<reply> stats(request& r) {
    const control_plane& plane = r.srv.plane();
    const auto snap = plane.snapshot(true);
    const auto& workers = plane.workers();
    reply out = wsa_reply(wsa::no_error);
    out["tsc"] = rte_rdtsc();
    out["tsc_hz"] = rte_get_tsc_hz();
    json ws = json::array();
    for (const auto& w : workers) {
        const worker_counters& c = w->counters();
        uint64_t rx = 0, tx = 0;
        for (const auto& p : snap->ports) {
            rx += c.port[p.port].rx_packets.read();
            tx += c.port[p.port].tx_packets.read();
        }
        ws.push_back({{"worker", w->id()},
                      {"busy_cycles", c.busy_cycles.read()},
                      {"idle_cycles", c.idle_cycles.read()},
                      {"rx_packets", rx},
                      {"tx_packets", tx}});
    }
    out["workers"] = ws;
    json ports = json::array();
    for (const auto& p : snap->ports) {
        if (p.connection.empty()) {
            continue;
        }
        const port_totals t = sum_port_counters(workers, p.port);
        ports.push_back({{"connection", p.connection},
                         {"device", p.device},
                         {"link_up", p.link_up},
                         {"rx_packets", t.rx_packets},
                         {"rx_bytes", t.rx_bytes},
                         {"tx_packets", t.tx_packets},
                         {"tx_bytes", t.tx_bytes},
                         {"rx_missed", p.rx_missed},
                         {"rx_errors", p.rx_errors},
                         {"tx_errors", p.tx_errors},
                         {"rx_nombuf", p.rx_nombuf}});
    }
    out["connections"] = ports;
    json drops = json::object();
    for (size_t r = 0; r < drop_reason_count; ++r) {
        drops[drop_reason_name(drop_reason(r))] = sum_drops(workers, drop_reason(r));
    }
    out["drops"] = drops;
    // Per-VC counters, when the file turned them on: every VC with a series of its own as
    // [connection, call, key, packets, bytes, drops] (at most metrics.max_series of them).
    // Slots are released on this thread only, so none is recycled under this reading.
    const counter_slots& vc_slots = plane.state().vc_slots();
    out["per_vc"] = vc_slots.counting();
    json calls = json::array();
    if (vc_slots.counting() && snap->series) {
        for (const auto& v : snap->series->vcs) {
            const slot_totals t = vc_slots.read(v.slot);
            calls.push_back({v.connection, v.call, v.key, t.packets, t.bytes, t.drops});
        }
    }
    out["calls"] = calls;
    const latency_histogram& g = snap->grace_periods;
    out["grace_periods"] = {
        {"count", g.count}, {"sum_seconds", g.sum}, {"bounds_seconds", g.bounds}, {"le", g.le}};
    return out;
}

std::optional<reply> reload(request& r) {
    std::optional<std::string> text;
    if (r.args.contains("config")) {
        text = str(r.args, "config");
    }
    const bool dry_run = flag(r.args, "dry_run", false);
    if (text && !dry_run) {
        // What the file provisions belongs to the file: a reload reads the daemon's own file,
        // never a client's text (that is only for --plan).
        throw bad_request("'config' is only accepted with \"dry_run\": true");
    }
    return r.srv.reload(dry_run, text);
}

} // namespace

const std::vector<handler_entry>& switch_handlers() {
    static const std::vector<handler_entry> table = {
        {"status", status, true}, {"connections", connections, true},
        {"calls", calls, true},   {"stats", stats, true},
        {"reload", reload},
    };
    return table;
}

} // namespace vcplane
