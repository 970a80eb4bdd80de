#include "daemon/control_server.hh"

#include "base/contract_stats.hh"

#include <cerrno>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <fmt/format.h>
#include <grp.h>
#include <nlohmann/json.hpp>
#include <pwd.h>
#include <set>
#include <stdexcept>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/log.hh"
#include "port/ports.hh"
#include "vcplane_version.hh"

namespace vcplane {

using nlohmann::json;
using nsp::wsa;

namespace {

constexpr int wsa_not_initialised = 10093; // WSANOTINITIALISED: a request before "hello"

// A request the server cannot even start: answered with WSAEINVAL and this message.
struct bad_request : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// An operation dispatch() does not know (WSAEOPNOTSUPP).
struct unknown_operation : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// A VC or party handle this session does not hold (never had, or dead): INVALID_HANDLE.
struct stale_handle : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// A reply to a request whose id could not be read.
json unaddressed(const json& r) {
    json out{{"id", nullptr}};
    out.update(r);
    return out;
}

json status_reply(const char* family, const char* name, int64_t code, const std::string& msg) {
    return json{{"family", family}, {"status", name}, {"code", code}, {"message", msg}};
}
json wsa_reply(wsa e, const std::string& msg = "") {
    return status_reply("nsp", nsp::wsa_name(e), int64_t(e), msg);
}
json ndis_reply(callmgmt::status s, const std::string& msg = "") {
    return status_reply("ndis", callmgmt::status_name(s), int64_t(uint32_t(s)), msg);
}
json cm_reply(cm::result r, const std::string& msg = "") {
    return status_reply("cm", cm::result_name(r), int64_t(uint32_t(r)), msg);
}

std::string str(const json& req, const char* key, bool required = true) {
    auto it = req.find(key);
    if (it == req.end()) {
        if (required) {
            throw bad_request(fmt::format("missing '{}' (a string)", key));
        }
        return "";
    }
    if (!it->is_string()) {
        throw bad_request(fmt::format("'{}' must be a string", key));
    }
    return it->get<std::string>();
}

uint64_t num(const json& req, const char* key, bool required = true, uint64_t fallback = 0) {
    auto it = req.find(key);
    if (it == req.end()) {
        if (required) {
            throw bad_request(fmt::format("missing '{}' (an unsigned integer)", key));
        }
        return fallback;
    }
    if (!it->is_number_unsigned()) {
        throw bad_request(fmt::format("'{}' must be an unsigned integer", key));
    }
    return it->get<uint64_t>();
}

bool flag(const json& req, const char* key, bool fallback) {
    auto it = req.find(key);
    if (it == req.end()) {
        return fallback;
    }
    if (!it->is_boolean()) {
        throw bad_request(fmt::format("'{}' must be true or false", key));
    }
    return it->get<bool>();
}

uint32_t key_of(const json& j) {
    for (const char* k : {"key", "label", "vid"}) {
        if (j.contains(k)) {
            const uint64_t v = num(j, k);
            if (v > UINT32_MAX) {
                throw bad_request(fmt::format("'{}' is out of range", k));
            }
            return uint32_t(v);
        }
    }
    throw bad_request("missing 'label' (or 'vid')");
}

callmgmt::party_spec party_of(const json& req) {
    auto it = req.find("party");
    if (it == req.end() || !it->is_object()) {
        throw bad_request("missing 'party' (an object with name, connection, label, next_hop)");
    }
    callmgmt::party_spec p;
    p.name = str(*it, "name");
    p.connection = str(*it, "connection");
    p.key = key_of(*it);
    const std::string mac = str(*it, "next_hop");
    auto parsed = parse_mac(mac);
    if (!parsed) {
        throw bad_request(fmt::format("'{}' is not a MAC address (six hex pairs like "
                                      "02:00:5e:10:00:01)",
                                      mac));
    }
    p.next_hop = *parsed;
    return p;
}

std::vector<uint8_t> close_data_of(const json& req) {
    const std::string d = str(req, "close_data", false);
    return std::vector<uint8_t>(d.begin(), d.end());
}

} // namespace

// ---------------------------------------------------------------------------------------------

class control_server::session : public nmr::client, public callmgmt::client_dispatch {
public:
    session(control_server& srv, uint64_t id, int fd)
        : srv_(srv)
        , id_(id)
        , fd_(fd)
        , module_{fmt::format("session/{}", id)} {}

    ~session() override {
        if (fd_ >= 0) {
            srv_.loop_.unwatch(fd_);
            close(fd_);
        }
    }

    int fd() const { return fd_; }

    void on_events(uint32_t ev) {
        if ((ev & EPOLLOUT) != 0) {
            flush_out();
        }
        if (fd_ < 0) {
            return;
        }
        if (ending_) {
            // Its last goodbye came: nothing more is read; a peer that hangs up now cannot
            // be answered.
            if ((ev & (EPOLLHUP | EPOLLERR)) != 0) {
                hang_up();
            }
            return;
        }
        if ((ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0) {
            read_some();
        }
    }

    // NSPv2Cleanup (the last goodbye) or Rundown (the peer vanished): tear down everything the
    // session owns; the session is freed once that completed.
    void end(bool rundown) {
        if (ending_) {
            return;
        }
        ending_ = true;
        if (rundown) {
            hang_up();
        } else if (fd_ >= 0) {
            watch_for(); // no more input; replies of the requests still pending go out
        }
        if (startups_ > 0 || rundown) {
            log::info("session {}: {}", id_, rundown ? "rundown" : "cleanup");
        }
        srv_.names_.end_session(id_);
        const uint64_t id = id_;
        control_server& srv = srv_;
        if (registered_ &&
            srv_.plane_.registrar().deregister_client(registration_) == nmr::status::pending) {
            // Its call managers close its calls; the session goes when they are done.
            srv_.plane_.registrar().on_deregister_complete(registration_,
                                                           [&srv, id] { srv.forget(id); });
        } else {
            srv_.loop_.post([&srv, id] { srv.forget(id); });
        }
    }

    // The session's teardown completed (control_server::forget): the last goodbye is
    // answered after every reply of the requests that were pending when it came.
    void finish() {
        if (farewell_) {
            reply(farewell_->first, std::move(farewell_->second));
            farewell_.reset();
        }
        if (fd_ >= 0) {
            flush_out();
            hang_up();
        }
    }

    // nmr::client: a session binds to every call manager.
    nmr::status attach_provider(nmr::handle h, void*,
                                const nmr::registration_instance& p) override {
        const auto* conn = static_cast<const std::string*>(p.npi_specific);
        if (conn == nullptr || ending_) {
            return nmr::status::nointerface;
        }
        auto b = std::make_unique<binding>();
        b->self = this;
        b->ref.binding = h;
        b->ref.connection = *conn;
        const void* d = nullptr;
        const nmr::status s = srv_.plane_.registrar().client_attach_provider(
            h, b.get(), static_cast<callmgmt::client_dispatch*>(this), &b->ref.provider_binding,
            &d);
        if (s != nmr::status::success) {
            return s; // b frees itself: on failure the client frees its own context
        }
        b->ref.dispatch = static_cast<callmgmt::provider_dispatch*>(const_cast<void*>(d));
        bindings_[*conn] = b.release();
        return s;
    }
    nmr::status detach_provider(void* cb) override {
        auto* b = static_cast<binding*>(cb);
        b->detaching = true;
        bindings_.erase(b->ref.connection);
        return b->pending == 0 ? nmr::status::success : nmr::status::pending;
    }
    void cleanup_binding_context(void* cb) override { delete static_cast<binding*>(cb); }

    // callmgmt::client_dispatch
    void drop_party_complete(void* cb, callmgmt::status s, callmgmt::party_handle p,
                             void*) override {
        auto it = pending_drops_.find(p);
        if (it != pending_drops_.end()) {
            json r = ndis_reply(s);
            r["party"] = p;
            reply(it->second, std::move(r));
            pending_drops_.erase(it);
        }
        op_done(cb);
    }
    void close_call_complete(void* cb, callmgmt::status s, callmgmt::vc_handle v,
                             callmgmt::party_handle, void*) override {
        auto it = pending_closes_.find(v);
        if (it != pending_closes_.end()) {
            json r = ndis_reply(s);
            r["vc"] = v;
            reply(it->second, std::move(r));
            pending_closes_.erase(it);
        }
        call_gone(v);
        op_done(cb);
    }
    void incoming_close_call(void*, callmgmt::status reason, callmgmt::vc_handle v,
                             void*) override {
        call_gone(v);
        send_event({{"event", "incoming_close_call"},
                    {"vc", v},
                    {"status", callmgmt::status_name(reason)}});
    }
    void incoming_drop_party(void*, callmgmt::status reason, callmgmt::party_handle p,
                             void*) override {
        party_vc_.erase(p);
        send_event({{"event", "incoming_drop_party"},
                    {"party", p},
                    {"status", callmgmt::status_name(reason)}});
    }

    void complete_lookup(uint64_t request, nsp::lookup_handle h) {
        auto r = srv_.names_.complete_next(id_, h);
        if (!r) {
            // The session ended meanwhile, and its lookups with it.
            r = nsp::name_space::next_result{wsa::cancelled, {}, 0};
        }
        contract_stats::process().count("nsp", "lookup_next_complete", nsp::wsa_name(r->status));
        json out = wsa_reply(r->status, r->status == wsa::cancelled
                                            ? "the lookup ended before this NextEx completed"
                                            : "");
        out["lookup"] = h;
        if (r->status == wsa::no_error) {
            out["result"] = r->result;
        } else if (r->status == wsa::fault) {
            out["needed"] = r->needed;
            out["message"] = fmt::format("the result needs a buffer of {} bytes", r->needed);
        }
        reply(request, std::move(out));
    }

private:
    struct binding {
        session* self;
        callmgmt::provider_ref ref;
        unsigned pending = 0;
        bool detaching = false;
    };

    void op_done(void* cb) {
        auto* b = static_cast<binding*>(cb);
        if (--b->pending == 0 && b->detaching) {
            srv_.plane_.registrar().client_detach_provider_complete(b->ref.binding);
        }
    }

    // ---- I/O ---------------------------------------------------------------------------

    void hang_up() {
        if (fd_ >= 0) {
            srv_.loop_.unwatch(fd_);
            close(fd_);
            fd_ = -1;
        }
        out_.clear();
    }
    // Input while the session lasts, output while replies wait.
    void watch_for() {
        srv_.loop_.modify(fd_, (ending_ ? 0u : uint32_t(EPOLLIN)) | (want_out_ ? EPOLLOUT : 0u));
    }

    void read_some() {
        std::vector<char> buf(srv_.cfg_.max_message_bytes);
        // Bounded work per wake-up: a chatty client cannot monopolise the control thread.
        for (int i = 0; i < 64 && fd_ >= 0 && !ending_; ++i) {
            const ssize_t n = recv(fd_, buf.data(), buf.size(), MSG_DONTWAIT | MSG_TRUNC);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                    return;
                }
                end(true); // reset: the peer is gone
                return;
            }
            if (n == 0) {
                end(startups_ > 0); // EOF: Rundown if it never said its last goodbye
                return;
            }
            if (size_t(n) > buf.size()) {
                reply_raw(unaddressed(wsa_reply(
                    wsa::invalid,
                    fmt::format("message of {} bytes exceeds the limit of {}", n, buf.size()))));
                continue;
            }
            handle(std::string(buf.data(), size_t(n)));
        }
    }

    void handle(const std::string& text) {
        json req = json::parse(text, nullptr, false);
        if (req.is_discarded() || !req.is_object()) {
            reply_raw(unaddressed(wsa_reply(wsa::invalid, "malformed request: not a JSON object")));
            return;
        }
        auto id_it = req.find("id");
        if (id_it == req.end() || !id_it->is_number_unsigned()) {
            reply_raw(unaddressed(
                wsa_reply(wsa::invalid, "malformed request: 'id' must be an unsigned integer")));
            return;
        }
        const uint64_t id = id_it->get<uint64_t>();
        // The operation's label in vcplane_contract_operations_total: only names dispatch()
        // knows, so that a client cannot grow the metrics without bound.
        std::string label = "request";
        std::optional<json> r;
        bool counted_by_call_manager = false;
        try {
            const std::string op = str(req, "op");
            if (op != "hello" && startups_ == 0) {
                r = status_reply("nsp", "WSANOTINITIALISED", wsa_not_initialised,
                                 "say hello first");
            } else {
                label = op;
                r = dispatch(op, id, req);
                // Outcomes the contract engines produced are counted there: a call manager's
                // (not NOINTERFACE: a binding going away never reached one) and the Connection
                // Manager's disconnect.
                counted_by_call_manager = r && ((r->value("family", "") == "ndis" &&
                                                 r->value("status", "") != "NOINTERFACE") ||
                                                op == "disconnect");
            }
        } catch (const unknown_operation& e) {
            label = "unknown";
            r = wsa_reply(wsa::not_supported, e.what());
        } catch (const bad_request& e) {
            r = wsa_reply(wsa::invalid, fmt::format("{}: {}", label, e.what()));
        } catch (const stale_handle& e) {
            r = ndis_reply(callmgmt::status::invalid_handle, e.what()); // no call manager saw it
        } catch (const json::exception& e) {
            r = wsa_reply(wsa::invalid, fmt::format("{}: {}", label, e.what()));
        }
        if (!r) {
            return; // answered when the operation completes
        }
        if (!counted_by_call_manager) {
            contract_stats::process().count(r->value("family", "nsp"), label,
                                            r->value("status", "?"));
        }
        reply(id, std::move(*r));
    }

    void reply(uint64_t id, json r) {
        json out{{"id", id}};
        out.update(r);
        reply_raw(std::move(out));
    }
    void send_event(json e) {
        if (fd_ >= 0 && !ending_) {
            reply_raw(std::move(e));
        }
    }
    void reply_raw(json r) {
        if (fd_ < 0) {
            return;
        }
        out_.push_back(r.dump());
        if (out_.size() > srv_.cfg_.max_queued_replies) {
            log::warning("session {}: {} replies unread; disconnecting it", id_, out_.size());
            out_.clear();
            end(true);
            return;
        }
        flush_out();
    }
    void flush_out() {
        while (!out_.empty() && fd_ >= 0) {
            const std::string& m = out_.front();
            const ssize_t n = send(fd_, m.data(), m.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    if (!want_out_) {
                        want_out_ = true;
                        watch_for();
                    }
                    return;
                }
                out_.clear();
                end(true);
                return;
            }
            out_.pop_front();
        }
        if (want_out_ && fd_ >= 0) {
            want_out_ = false;
            watch_for();
        }
    }

    // ---- requests ----------------------------------------------------------------------

    binding& provider_for(const std::string& connection) {
        auto it = bindings_.find(connection);
        if (it == bindings_.end()) {
            throw bad_request(fmt::format("no connection '{}' with a call manager", connection));
        }
        return *it->second;
    }
    binding& provider_of_vc(callmgmt::vc_handle v) {
        auto it = vc_connection_.find(v);
        if (it == vc_connection_.end()) {
            throw stale_handle(fmt::format("no VC {} of this session", v));
        }
        return provider_for(it->second);
    }
    // The call manager's answer has arrived: the VC's call is gone. A VC the session created
    // stays (deactivated, for reuse or delete_vc); one the call manager created is gone too.
    void call_gone(callmgmt::vc_handle v) {
        std::erase_if(party_vc_, [v](const auto& e) { return e.second == v; });
        if (created_vcs_.count(v) == 0) {
            vc_connection_.erase(v);
        }
    }
    template <typename F>
    callmgmt::status through(binding& b, F&& f) {
        return callmgmt::call_through(srv_.plane_.registrar(), b.ref, std::forward<F>(f));
    }
    json failed(binding& b, callmgmt::status s) {
        return ndis_reply(s, s == callmgmt::status::nointerface
                                 ? "the connection's call manager is going away"
                                 : b.ref.dispatch->last_error(b.ref.provider_binding));
    }

    std::optional<json> dispatch(const std::string& op, uint64_t id, const json& req) {
        auto& plane = srv_.plane_;
        if (op == "hello") {
            if (startups_++ == 0 && !registered_) {
                nmr::registration_instance inst;
                inst.npi = &callmgmt::npi;
                inst.module = &module_;
                plane.registrar().register_client(*this, inst, this, &registration_);
                registered_ = true;
            }
            json r = wsa_reply(wsa::no_error);
            r["session"] = id_;
            r["startups"] = startups_;
            r["version"] = VCPLANE_VERSION;
            return r;
        }
        if (op == "goodbye") {
            --startups_;
            json r = wsa_reply(wsa::no_error);
            r["startups"] = startups_;
            if (startups_ == 0) {
                // The last goodbye: Cleanup. Requests still pending are answered first (their
                // completions, or cancelled), this reply last, then the connection closes.
                contract_stats::process().count("nsp", "goodbye", nsp::wsa_name(wsa::no_error));
                farewell_.emplace(id, std::move(r));
                end(false);
                return std::nullopt;
            }
            return r;
        }
        if (op == "status") {
            const auto snap = plane.snapshot(false);
            json r = wsa_reply(wsa::no_error);
            r["version"] = VCPLANE_VERSION;
            r["connections"] = plane.connections().connections().size();
            r["unmanaged_ports"] = plane.connections().unmanaged().size();
            r["calls"] = snap->calls;
            r["parties"] = snap->parties;
            r["calls_waiting"] = snap->calls_waiting;
            r["sessions"] = srv_.sessions();
            r["lookups"] = srv_.names_.lookups();
            r["services"] = srv_.names_.services();
            r["grace_pending"] = snap->grace_pending;
            return r;
        }
        if (op == "connections") {
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
                unmanaged.push_back({{"device", u.port.device},
                                     {"mac", format_mac(u.port.mac)},
                                     {"reason", u.reason}});
            }
            json r = wsa_reply(wsa::no_error);
            r["connections"] = list;
            r["unmanaged"] = unmanaged;
            return r;
        }
        if (op == "calls") {
            json list = json::array();
            for (const auto& [conn, m] : plane.call_managers()) {
                for (const auto& c : m->calls()) {
                    json parties = json::array();
                    for (const auto& [h, p] : c.parties) {
                        parties.push_back({{"party", h},
                                           {"name", p.name},
                                           {"connection", p.connection},
                                           {"key", p.key},
                                           {"next_hop", format_mac(p.next_hop)}});
                    }
                    list.push_back({{"vc", c.vc},
                                    {"name", c.name},
                                    {"connection", conn},
                                    {"key", c.key},
                                    {"owner", c.owner},
                                    {"multipoint", c.multipoint},
                                    {"sustained_rate", c.flow.sustained_rate},
                                    {"peak_rate", c.flow.peak_rate},
                                    {"burst", c.flow.burst},
                                    {"parties", parties}});
                }
            }
            json r = wsa_reply(wsa::no_error);
            r["calls"] = list;
            return r;
        }
        if (op == "create_vc") {
            binding& b = provider_for(str(req, "connection"));
            callmgmt::vc_handle v = 0;
            const auto s =
                through(b, [&](auto& d, void* pb) { return d.create_vc(pb, nullptr, &v); });
            if (s != callmgmt::status::success) {
                return failed(b, s);
            }
            vc_connection_[v] = b.ref.connection;
            created_vcs_.insert(v);
            json r = ndis_reply(s);
            r["vc"] = v;
            return r;
        }
        if (op == "delete_vc") {
            const uint64_t v = num(req, "vc");
            binding& b = provider_of_vc(v);
            const auto s = through(b, [&](auto& d, void* pb) { return d.delete_vc(pb, v); });
            if (s == callmgmt::status::success) {
                vc_connection_.erase(v);
                created_vcs_.erase(v);
            }
            return s == callmgmt::status::success ? ndis_reply(s) : failed(b, s);
        }
        if (op == "make_call") {
            binding& b = provider_for(str(req, "connection"));
            callmgmt::call_spec spec{str(req, "name"),
                                     key_of(req),
                                     flag(req, "multipoint", true),
                                     {num(req, "sustained_rate", false),
                                      num(req, "peak_rate", false), num(req, "burst", false)}};
            const callmgmt::party_spec first = party_of(req);
            const uint64_t on_vc = num(req, "vc", false);
            if (on_vc != 0 && vc_connection_.count(on_vc) == 0) {
                throw stale_handle(fmt::format("no VC {} of this session", on_vc));
            }
            callmgmt::vc_handle v = 0;
            callmgmt::party_handle p = 0;
            const auto s = through(b, [&](auto& d, void* pb) {
                return d.make_call(pb, on_vc, spec, first, nullptr, nullptr, &v, &p);
            });
            if (s != callmgmt::status::success) {
                return failed(b, s);
            }
            vc_connection_[v] = b.ref.connection;
            if (p != 0) {
                party_vc_[p] = v; // the party the call was made with, for drop_party
            }
            json r = ndis_reply(s);
            r["vc"] = v;
            r["party"] = p;
            return r;
        }
        if (op == "add_party") {
            const uint64_t v = num(req, "vc");
            binding& b = provider_of_vc(v);
            const callmgmt::party_spec spec = party_of(req);
            callmgmt::party_handle p = 0;
            const auto s = through(
                b, [&](auto& d, void* pb) { return d.add_party(pb, v, spec, nullptr, &p); });
            if (s != callmgmt::status::success) {
                return failed(b, s);
            }
            party_vc_[p] = v;
            json r = ndis_reply(s);
            r["party"] = p;
            return r;
        }
        if (op == "drop_party") {
            const uint64_t p = num(req, "party");
            auto pv = party_vc_.find(p);
            if (pv == party_vc_.end()) {
                throw stale_handle(fmt::format("no party {} of this session", p));
            }
            binding& b = provider_of_vc(pv->second);
            const auto data = close_data_of(req);
            const auto s = through(b, [&](auto& d, void* pb) { return d.drop_party(pb, p, data); });
            if (s != callmgmt::status::pending) {
                return failed(b, s);
            }
            party_vc_.erase(p);
            ++b.pending;
            pending_drops_[p] = id; // answered by drop_party_complete
            return std::nullopt;
        }
        if (op == "close_call") {
            const uint64_t v = num(req, "vc");
            binding& b = provider_of_vc(v);
            const uint64_t last = num(req, "party", false);
            const auto data = close_data_of(req);
            const auto s =
                through(b, [&](auto& d, void* pb) { return d.close_call(pb, v, last, data); });
            if (s != callmgmt::status::pending) {
                return failed(b, s);
            }
            ++b.pending;
            pending_closes_[v] = id; // answered by close_call_complete
            return std::nullopt;
        }
        if (op == "port_attach") {
            const probe_result pr = plane.attach_port(str(req, "devargs"));
            if (!pr.port) {
                return cm_reply(cm::result::unexpected, pr.error);
            }
            json r = cm_reply(cm::result::success);
            r["port"] = *pr.port;
            const auto* c = plane.connections().find_by_device(port_device_name(*pr.port));
            r["connection"] = c != nullptr ? c->name : "";
            return r;
        }
        if (op == "port_detach") {
            std::string error;
            if (!plane.detach_port(str(req, "device"), &error)) {
                return cm_reply(cm::result::invalid_parameter, error);
            }
            return cm_reply(cm::result::success);
        }
        if (op == "disconnect") {
            const cm::result r = plane.disconnect(str(req, "connection"));
            return cm_reply(r, r == cm::result::not_supported
                                   ? "the connection was claimed out of band: its port belongs "
                                     "to whoever brought it up"
                                   : "");
        }
        if (op == "reload") {
            if (!srv_.reload_) {
                return wsa_reply(wsa::not_supported, "this switch has no configuration to reload");
            }
            std::optional<std::string> text;
            if (req.contains("config")) {
                text = str(req, "config");
            }
            const bool dry_run = flag(req, "dry_run", false);
            if (text && !dry_run) {
                // What the file provisions belongs to the file: a reload reads the daemon's own
                // file, never a client's text (that is only for --plan).
                throw bad_request("'config' is only accepted with \"dry_run\": true");
            }
            return srv_.reload_(dry_run, text);
        }
        if (op == "modify_call_qos") {
            const uint64_t v = num(req, "vc");
            binding& b = provider_of_vc(v);
            const callmgmt::flowspec flow{num(req, "sustained_rate", false),
                                          num(req, "peak_rate", false), num(req, "burst", false)};
            const auto s =
                through(b, [&](auto& d, void* pb) { return d.modify_call_qos(pb, v, flow); });
            return s == callmgmt::status::success ? ndis_reply(s) : failed(b, s);
        }
        if (op == "set_service") {
            const std::string operation = str(req, "operation");
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
            std::vector<std::string> addresses;
            if (req.contains("addresses")) {
                if (!req["addresses"].is_array()) {
                    throw bad_request("'addresses' must be an array of strings");
                }
                for (const auto& a : req["addresses"]) {
                    if (!a.is_string()) {
                        throw bad_request("'addresses' must be an array of strings");
                    }
                    addresses.push_back(a.get<std::string>());
                }
            }
            return wsa_reply(srv_.names_.set_service(
                id_, o, flag(req, "multiple", false) ? nsp::service_multiple : 0, str(req, "name"),
                addresses, str(req, "comment", false)));
        }
        if (op == "lookup_begin") {
            nsp::lookup_handle h = 0;
            const wsa e =
                srv_.names_.lookup_begin(id_, str(req, "query"), str(req, "kind", false), &h);
            json r = wsa_reply(e);
            if (e == wsa::no_error) {
                r["lookup"] = h;
            }
            return r;
        }
        if (op == "lookup_next") {
            const uint64_t h = num(req, "lookup");
            const wsa e = srv_.names_.lookup_next(
                id_, h, num(req, "buffer", false, 65536),
                flag(req, "flush_previous", false) ? nsp::lup_flushprevious : 0);
            if (e != wsa::no_error) {
                return wsa_reply(e);
            }
            contract_stats::process().count("nsp", "lookup_next", "PENDING");
            // Answered on the next loop iteration; a lookup_end before then cancels it.
            control_server& srv = srv_;
            const uint64_t sid = id_;
            srv_.loop_.post([&srv, sid, id, h] {
                auto it = srv.sessions_.find(sid);
                if (it != srv.sessions_.end()) {
                    it->second->complete_lookup(id, h);
                }
            });
            return std::nullopt;
        }
        if (op == "lookup_end") {
            return wsa_reply(srv_.names_.lookup_end(id_, num(req, "lookup")));
        }
        throw unknown_operation(fmt::format("unknown operation '{}'", op));
    }

    control_server& srv_;
    uint64_t id_;
    int fd_;
    nmr::module_id module_;
    nmr::handle registration_;
    bool registered_ = false;
    unsigned startups_ = 0;
    bool ending_ = false;
    bool want_out_ = false;
    std::deque<std::string> out_;
    std::optional<std::pair<uint64_t, json>> farewell_; // the last goodbye's reply
    std::map<std::string, binding*> bindings_;
    std::map<callmgmt::vc_handle, std::string> vc_connection_;
    std::map<callmgmt::party_handle, callmgmt::vc_handle> party_vc_;
    std::set<callmgmt::vc_handle> created_vcs_; // by create_vc: outlive their calls
    std::map<callmgmt::party_handle, uint64_t> pending_drops_;
    std::map<callmgmt::vc_handle, uint64_t> pending_closes_;
};

// ---------------------------------------------------------------------------------------------

namespace {

std::set<uid_t> resolve_users(const std::vector<std::string>& names) {
    std::set<uid_t> out;
    for (const auto& n : names) {
        if (const passwd* pw = getpwnam(n.c_str())) {
            out.insert(pw->pw_uid);
        } else {
            log::warning("control.allowed_users: no user '{}'", n);
        }
    }
    return out;
}

std::set<gid_t> resolve_groups(const std::vector<std::string>& names) {
    std::set<gid_t> out;
    for (const auto& n : names) {
        if (const group* gr = getgrnam(n.c_str())) {
            out.insert(gr->gr_gid);
        } else {
            log::warning("control.allowed_groups: no group '{}'", n);
        }
    }
    return out;
}

bool allowed(const ucred& who, const control_config& cfg) {
    if (resolve_users(cfg.allowed_users).count(who.uid) != 0) {
        return true;
    }
    const auto groups = resolve_groups(cfg.allowed_groups);
    if (groups.empty()) {
        return false;
    }
    if (groups.count(who.gid) != 0) {
        return true;
    }
    // The user's supplementary groups count too.
    const passwd* pw = getpwuid(who.uid);
    if (pw == nullptr) {
        return false;
    }
    std::vector<gid_t> list(64);
    int n = int(list.size());
    if (getgrouplist(pw->pw_name, pw->pw_gid, list.data(), &n) < 0) {
        list.resize(size_t(n));
        getgrouplist(pw->pw_name, pw->pw_gid, list.data(), &n);
    }
    for (int i = 0; i < n; ++i) {
        if (groups.count(list[size_t(i)]) != 0) {
            return true;
        }
    }
    return false;
}

} // namespace

control_server::control_server(const control_config& cfg, event_loop& loop, control_plane& plane)
    : cfg_(cfg)
    , loop_(loop)
    , plane_(plane)
    , names_([this] {
        std::vector<json> out;
        for (const auto& c : plane_.connections().connections()) {
            out.push_back({{"name", c.name}, {"kind", "connection"}, {"device", c.port.device}});
        }
        for (const auto& [conn, m] : plane_.call_managers()) {
            for (const auto& c : m->calls()) {
                out.push_back({{"name", c.name},
                               {"kind", "call"},
                               {"connection", conn},
                               {"key", c.key},
                               {"vc", c.vc}});
                for (const auto& [h, p] : c.parties) {
                    out.push_back({{"name", c.name + "/" + p.name},
                                   {"kind", "party"},
                                   {"connection", p.connection},
                                   {"key", p.key},
                                   {"party", h}});
                }
            }
        }
        return out;
    }) {
    const auto fail = [&](const std::string& what) {
        throw std::runtime_error(
            fmt::format("control.socket: {} {}: {}", what, cfg.socket, std::strerror(errno)));
    };
    // The directory, as systemd's RuntimeDirectory would make it.
    const std::string dir = cfg.socket.substr(0, cfg.socket.rfind('/'));
    if (!dir.empty()) {
        mkdir(dir.c_str(), 0755);
    }
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", cfg.socket.c_str());
    // A socket file left by a daemon that died is removed; one that answers is another daemon.
    const int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
        close(probe);
        errno = EADDRINUSE;
        fail("another daemon answers on");
    }
    close(probe);
    unlink(cfg.socket.c_str());
    listen_fd_ = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) {
        fail("cannot create");
    }
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
        close(listen_fd_);
        fail("cannot bind");
    }
    chmod(cfg.socket.c_str(), cfg.mode);
    if (!cfg.owner.empty() || !cfg.group.empty()) {
        const passwd* pw = cfg.owner.empty() ? nullptr : getpwnam(cfg.owner.c_str());
        const group* gr = cfg.group.empty() ? nullptr : getgrnam(cfg.group.c_str());
        if ((!cfg.owner.empty() && pw == nullptr) || (!cfg.group.empty() && gr == nullptr)) {
            log::warning("control.owner/group: unknown user or group; the socket keeps the "
                         "daemon's");
        } else if (chown(cfg.socket.c_str(), pw ? pw->pw_uid : uid_t(-1),
                         gr ? gr->gr_gid : gid_t(-1)) != 0) {
            log::warning("control.socket: chown failed: {}", std::strerror(errno));
        }
    }
    if (listen(listen_fd_, 128) != 0) {
        close(listen_fd_);
        fail("cannot listen on");
    }
    loop_.watch(listen_fd_, [this](uint32_t) { accept_one(); });
    log::notice("control socket {}", cfg.socket);
}

control_server::~control_server() {
    for (auto& [id, s] : sessions_) {
        s->end(true);
    }
    while (!lingering_.empty()) {
        end_linger(lingering_.front().first);
    }
    if (linger_timer_ >= 0) {
        loop_.unwatch(linger_timer_);
        close(linger_timer_);
    }
    if (listen_fd_ >= 0) {
        loop_.unwatch(listen_fd_);
        close(listen_fd_);
        unlink(cfg_.socket.c_str());
    }
}

nsp::wsa control_server::set_file_service(const service_config& s) {
    return names_.set_service(file_session, nsp::set_op::register_service, 0, s.name, s.addresses,
                              s.comment);
}

nsp::wsa control_server::delete_file_service(const std::string& name) {
    return names_.set_service(file_session, nsp::set_op::remove, 0, name, {}, "");
}

void control_server::close_all(const std::function<void()>& pump) {
    std::vector<uint64_t> ids;
    for (const auto& [id, s] : sessions_) {
        ids.push_back(id);
    }
    for (uint64_t id : ids) {
        auto it = sessions_.find(id);
        if (it != sessions_.end()) {
            it->second->end(true);
        }
    }
    while (!sessions_.empty()) {
        pump();
    }
}

void control_server::accept_one() {
    for (int i = 0; i < 64; ++i) {
        const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            return;
        }
        ucred who{};
        socklen_t len = sizeof(who);
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &who, &len);
        const auto refuse = [this, fd](json r, const std::string& why) {
            const std::string m = unaddressed(r).dump();
            [[maybe_unused]] ssize_t n = send(fd, m.data(), m.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
            linger_close(fd);
            log::notice("control: {}", why);
        };
        if (!allowed(who, cfg_)) {
            refuse(wsa_reply(wsa::access_denied,
                             fmt::format("uid {} is not allowed on this socket", who.uid)),
                   fmt::format("refused pid {} uid {} gid {} (not in control.allowed_users or "
                               "allowed_groups)",
                               who.pid, who.uid, who.gid));
            continue;
        }
        if (sessions_.size() >= cfg_.max_sessions) {
            refuse(wsa_reply(wsa::not_enough_memory,
                             fmt::format("{} sessions is the limit", cfg_.max_sessions)),
                   "refused a session: control.max_sessions reached");
            continue;
        }
        const uint64_t id = next_session_++;
        auto s = std::make_unique<session>(*this, id, fd);
        session* raw = s.get();
        sessions_[id] = std::move(s);
        loop_.watch(fd, [raw](uint32_t ev) { raw->on_events(ev); });
    }
}

// Closing a socket with unread input resets the peer, and the refusal it has not read yet is
// lost. So: no more output (the peer reads the refusal, then EOF), input discarded, and the
// socket closed when the peer closes it, or after two seconds.
void control_server::linger_close(int fd) {
    shutdown(fd, SHUT_WR);
    lingering_.emplace_back(fd, std::chrono::steady_clock::now());
    loop_.watch(fd, [this, fd](uint32_t) {
        char sink[512];
        ssize_t n;
        while ((n = recv(fd, sink, sizeof(sink), MSG_DONTWAIT)) > 0) {
        }
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
            end_linger(fd);
        }
    });
    if (linger_timer_ < 0) {
        linger_timer_ = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        itimerspec every{{1, 0}, {1, 0}};
        timerfd_settime(linger_timer_, 0, &every, nullptr);
        loop_.watch(linger_timer_, [this](uint32_t) {
            uint64_t ticks;
            [[maybe_unused]] ssize_t r = read(linger_timer_, &ticks, sizeof(ticks));
            const auto old = std::chrono::steady_clock::now() - std::chrono::seconds(2);
            std::vector<int> due;
            for (const auto& [fd, since] : lingering_) {
                if (since < old) {
                    due.push_back(fd);
                }
            }
            for (int fd : due) {
                end_linger(fd);
            }
        });
    }
}

void control_server::end_linger(int fd) {
    loop_.unwatch(fd);
    close(fd);
    std::erase_if(lingering_, [fd](const auto& e) { return e.first == fd; });
}

void control_server::forget(uint64_t id) {
    auto it = sessions_.find(id);
    if (it != sessions_.end()) {
        it->second->finish();
        sessions_.erase(it);
    }
}

} // namespace vcplane
