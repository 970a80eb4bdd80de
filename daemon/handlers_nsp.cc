// The nsp family: sessions (Startup, Cleanup) and the namespace (SetServiceEx, lookups).
#include "base/contract_stats.hh"
#include "daemon/protocol.hh"
#include "daemon/request_handlers.hh"
#include "daemon/session.hh"
#include "daemon/session_host.hh"
#include "vcplane_version.hh"

namespace vcplane {
namespace {

using namespace protocol;
using nsp::wsa;

std::optional<reply> hello(request& r) {
    const bool pack = flag(r.args, "pack_replies", false); // before the session changes
    reply out = wsa_reply(wsa::no_error);
    out["startups"] = r.s.startup();
    out["session"] = r.s.id();
    out["version"] = VCPLANE_VERSION;
    if (pack) {
        r.s.pack_replies(); // this reply is the first to go out packed
    }
    return out;
}

std::optional<reply> goodbye(request& r) {
    reply out = wsa_reply(wsa::no_error);
    if (r.s.cleanup(r.id, out)) {
        return out;
    }
    // The last goodbye: Cleanup. Requests still pending are answered first, this one last.
    contract_stats::process().count("nsp", "goodbye", nsp::wsa_name(wsa::no_error));
    return std::nullopt;
}

std::optional<reply> set_service(request& r) {
    const std::string operation = str(r.args, "operation");
    nsp::set_op o;
    if (operation == "register") {
        o = nsp::set_op::register_service;
    } else if (operation == "deregister") {
        o = nsp::set_op::deregister;
    } else if (operation == "delete") {
        o = nsp::set_op::remove;
    } else {
        throw bad_request("'operation' is one of register, deregister, delete");
    }
    return wsa_reply(r.srv.names().set_service(
        r.s.id(), o, flag(r.args, "multiple", false) ? nsp::service_multiple : 0,
        str(r.args, "name"), strings_of(r.args, "addresses"), str(r.args, "comment", false)));
}

std::optional<reply> lookup_begin(request& r) {
    nsp::lookup_handle h = 0;
    const wsa e =
        r.srv.names().lookup_begin(r.s.id(), str(r.args, "query"), str(r.args, "kind", false), &h);
    reply out = wsa_reply(e);
    if (e == wsa::no_error) {
        out["lookup"] = h;
    }
    return out;
}

std::optional<reply> lookup_next(request& r) {
    const uint64_t h = num(r.args, "lookup");
    const wsa e = r.srv.names().lookup_next(
        r.s.id(), h, num(r.args, "buffer", false, 65536),
        flag(r.args, "flush_previous", false) ? nsp::lup_flushprevious : 0);
    if (e != wsa::no_error) {
        return wsa_reply(e);
    }
    // Started: the immediate answer is NO_ERROR, its result comes as lookup_next_complete.
    contract_stats::process().count("nsp", "lookup_next", nsp::wsa_name(e));
    r.s.await_lookup(h, r.id);
    return std::nullopt;
}

std::optional<reply> lookup_end(request& r) {
    return wsa_reply(r.srv.names().lookup_end(r.s.id(), num(r.args, "lookup")));
}

} // namespace

const std::vector<handler_entry>& nsp_handlers() {
    static const std::vector<handler_entry> table = {
        {"hello", hello},
        {"goodbye", goodbye},
        {"set_service", set_service},
        {"lookup_begin", lookup_begin},
        {"lookup_next", lookup_next},
        {"lookup_end", lookup_end},
    };
    return table;
}

} // namespace vcplane
