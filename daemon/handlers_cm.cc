// The cm family: ports the operator attaches and detaches, and the Connection Manager's
// disconnect (counted by the Connection Manager itself).
#include "daemon/protocol.hh"
#include "daemon/request_handlers.hh"
#include "daemon/session_host.hh"
#include "port/ports.hh"

namespace vcplane {
namespace {

using namespace protocol;

std::optional<reply> port_attach(request& r) {
    control_plane& plane = r.srv.plane();
    const probe_result pr = plane.attach_port(str(r.args, "devargs"));
    if (!pr.port) {
        return cm_reply(cm::result::unexpected, pr.error);
    }
    reply out = cm_reply(cm::result::success);
    out["port"] = *pr.port;
    const auto* c = plane.connections().find_by_device(port_device_name(*pr.port));
    out["connection"] = c != nullptr ? c->name : "";
    return out;
}

std::optional<reply> port_detach(request& r) {
    std::string error;
    if (!r.srv.plane().detach_port(str(r.args, "device"), &error)) {
        return cm_reply(cm::result::invalid_parameter, error);
    }
    return cm_reply(cm::result::success);
}

std::optional<reply> disconnect(request& r) {
    const cm::result res = r.srv.plane().disconnect(str(r.args, "connection"));
    r.counted_by_engine = true;
    return cm_reply(res, res == cm::result::not_supported
                             ? "the connection was claimed out of band: its port belongs to "
                               "whoever brought it up"
                             : "");
}

} // namespace

const std::vector<handler_entry>& cm_handlers() {
    static const std::vector<handler_entry> table = {
        {"port_attach", port_attach},
        {"port_detach", port_detach},
        {"disconnect", disconnect},
    };
    return table;
}

} // namespace vcplane
