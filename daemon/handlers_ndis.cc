// The ndis family: call management through the session's bindings to the call managers. A
// status a call manager returned is counted there (counted_by_engine); NOINTERFACE (the
// binding is going away) and stale handles never reached one and are counted by the session.
#include <fmt/format.h>

#include "daemon/protocol.hh"
#include "daemon/request_handlers.hh"
#include "daemon/session.hh"

namespace vcplane {
namespace {

using namespace protocol;
using cstatus = callmgmt::status;

// A request through b: its status, marked as counted when a call manager answered it.
template <typename F>
cstatus through(request& r, session::binding& b, F&& f) {
    const cstatus s = r.s.bindings().request(b, std::forward<F>(f));
    r.counted_by_engine = s != cstatus::nointerface;
    return s;
}

std::optional<reply> create_vc(request& r) {
    session::binding& b = r.s.provider_for(str(r.args, "connection"));
    callmgmt::vc_handle v = 0;
    const cstatus s =
        through(r, b, [&](auto& d, void* pb) { return d.create_vc(pb, nullptr, &v); });
    if (s != cstatus::success) {
        return r.s.refused(b, s);
    }
    r.s.hold_vc(v, b.ref.connection, true);
    reply out = ndis_reply(s);
    out["vc"] = v;
    return out;
}

std::optional<reply> delete_vc(request& r) {
    const uint64_t v = num(r.args, "vc");
    session::binding& b = r.s.provider_of_vc(v);
    const cstatus s = through(r, b, [&](auto& d, void* pb) { return d.delete_vc(pb, v); });
    if (s != cstatus::success) {
        return r.s.refused(b, s);
    }
    r.s.release_vc(v);
    return ndis_reply(s);
}

std::optional<reply> make_call(request& r) {
    session::binding& b = r.s.provider_for(str(r.args, "connection"));
    const callmgmt::call_spec spec{str(r.args, "name"), key_of(r.args),
                                   flag(r.args, "multipoint", true), flow_of(r.args),
                                   encap_of(r.args)};
    const party_spec first = party_of(r.args);
    const uint64_t on_vc = num(r.args, "vc", false);
    if (on_vc != 0 && !r.s.holds_vc(on_vc)) {
        throw stale_handle(fmt::format("no VC {} of this session", on_vc));
    }
    callmgmt::vc_handle v = 0;
    callmgmt::party_handle p = 0;
    const cstatus s = through(r, b, [&](auto& d, void* pb) {
        return d.make_call(pb, on_vc, spec, first, nullptr, nullptr, &v, &p);
    });
    if (s != cstatus::success) {
        return r.s.refused(b, s);
    }
    r.s.hold_vc(v, b.ref.connection, false);
    r.s.hold_party(p, v); // the party the call was made with, for drop_party
    reply out = ndis_reply(s);
    out["vc"] = v;
    out["party"] = p;
    return out;
}

std::optional<reply> add_party(request& r) {
    const uint64_t v = num(r.args, "vc");
    session::binding& b = r.s.provider_of_vc(v);
    const party_spec spec = party_of(r.args);
    callmgmt::party_handle p = 0;
    const cstatus s =
        through(r, b, [&](auto& d, void* pb) { return d.add_party(pb, v, spec, nullptr, &p); });
    if (s != cstatus::success) {
        return r.s.refused(b, s);
    }
    r.s.hold_party(p, v);
    reply out = ndis_reply(s);
    out["party"] = p;
    return out;
}

std::optional<reply> drop_party(request& r) {
    const uint64_t p = num(r.args, "party");
    session::binding& b = r.s.provider_of_vc(r.s.vc_of_party(p));
    const auto data = close_data_of(r.args);
    const cstatus s = through(r, b, [&](auto& d, void* pb) { return d.drop_party(pb, p, data); });
    if (s != cstatus::pending) {
        return r.s.refused(b, s); // a refused drop leaves the party as it was
    }
    r.s.release_party(p); // the handle died with the accepted drop
    r.s.await_drop(p, r.id);
    return std::nullopt;
}

std::optional<reply> close_call(request& r) {
    const uint64_t v = num(r.args, "vc");
    session::binding& b = r.s.provider_of_vc(v);
    const uint64_t last = num(r.args, "party", false);
    const auto data = close_data_of(r.args);
    const cstatus s =
        through(r, b, [&](auto& d, void* pb) { return d.close_call(pb, v, last, data); });
    if (s != cstatus::pending) {
        return r.s.refused(b, s);
    }
    r.s.await_close(v, r.id);
    return std::nullopt;
}

std::optional<reply> modify_call_qos(request& r) {
    const uint64_t v = num(r.args, "vc");
    session::binding& b = r.s.provider_of_vc(v);
    const traffic_contract flow = flow_of(r.args);
    const cstatus s =
        through(r, b, [&](auto& d, void* pb) { return d.modify_call_qos(pb, v, flow); });
    return s == cstatus::success ? ndis_reply(s) : r.s.refused(b, s);
}

} // namespace

const std::vector<handler_entry>& ndis_handlers() {
    static const std::vector<handler_entry> table = {
        {"create_vc", create_vc},
        {"delete_vc", delete_vc},
        {"make_call", make_call},
        {"add_party", add_party},
        {"drop_party", drop_party},
        {"close_call", close_call},
        {"modify_call_qos", modify_call_qos},
    };
    return table;
}

} // namespace vcplane
