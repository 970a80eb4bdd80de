// The switch's own operations: what it runs (status, connections, calls) and reload.
#include "daemon/control_server.hh"
#include "daemon/protocol.hh"
#include "daemon/request_handlers.hh"
#include "daemon/session.hh"
#include "vcplane_version.hh"

namespace vcplane {
namespace {

using namespace protocol;
using nsp::wsa;

std::optional<json> status(request& r) {
    const control_plane& plane = r.srv.plane();
    const auto snap = plane.snapshot(false);
    json out = wsa_reply(wsa::no_error);
    out["version"] = VCPLANE_VERSION;
    out["connections"] = plane.connections().connections().size();
    out["unmanaged_ports"] = plane.connections().unmanaged().size();
    out["calls"] = snap->calls;
    out["parties"] = snap->parties;
    out["calls_waiting"] = snap->calls_waiting;
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

std::optional<json> connections(request& r) {
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
    json out = wsa_reply(wsa::no_error);
    out["connections"] = list;
    out["unmanaged"] = unmanaged;
    return out;
}

json call_of(const std::string& connection, const call_manager::call_info& c) {
    json parties = json::array();
    for (const auto& [h, p] : c.parties) {
        parties.push_back({{"party", h},
                           {"name", p.name},
                           {"connection", p.connection},
                           {"key", p.key},
                           {"next_hop", format_mac(p.next_hop)}});
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
            {"parties", parties}};
}

std::optional<json> calls(request& r) {
    json list = json::array();
    for (const auto& [conn, m] : r.srv.plane().call_managers()) {
        for (const auto& c : m->calls()) {
            list.push_back(call_of(conn, c));
        }
    }
    json out = wsa_reply(wsa::no_error);
    out["calls"] = list;
    return out;
}

std::optional<json> reload(request& r) {
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
        {"status", status},
        {"connections", connections},
        {"calls", calls},
        {"reload", reload},
    };
    return table;
}

} // namespace vcplane
