#include "daemon/session.hh"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

#include "base/alloc_faults.hh"
#include "base/contract_stats.hh"
#include "base/log.hh"
#include "daemon/protocol.hh"
#include "daemon/request_handlers.hh"
#include "daemon/session_host.hh"

namespace vcplane {

using namespace protocol;
using nsp::wsa;

session::session(session_host& srv, uint64_t id, int fd)
    : srv_(srv)
    , id_(id)
    , fd_(fd)
    , bindings_(srv.plane().registrar(), *this, fmt::format("session/{}", id)) {
    memory_refusal_.reserve(memory_refusal_room);
    // A session that is ending binds to no new call manager.
    bindings_.accepts = [this](const std::string&) { return !ending_; };
}

session::~session() {
    if (fd_ >= 0) {
        srv_.loop().unwatch(fd_);
        close(fd_);
    }
}

void session::on_events(uint32_t ev) {
    if ((ev & EPOLLOUT) != 0) {
        flush_out();
    }
    if (fd_ < 0) {
        return;
    }
    if (ending_) {
        // Its last goodbye came: nothing more is read; a peer that hangs up now cannot be
        // answered.
        if ((ev & (EPOLLHUP | EPOLLERR)) != 0) {
            hang_up();
        }
        return;
    }
    if ((ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0) {
        read_some();
    }
}

void session::end(bool rundown) {
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
    srv_.names().end_session(id_);
    const uint64_t id = id_;
    session_host& srv = srv_;
    if (bindings_.registered() && bindings_.deregister() == nmr::status::pending) {
        // Its call managers close its calls; the session goes when they are done.
        bindings_.on_deregistered([&srv, id] { srv.forget(id); });
    } else {
        srv_.loop().post([&srv, id] { srv.forget(id); });
    }
}

void session::finish() {
    if (farewell_) {
        reply(farewell_->first, std::move(farewell_->second));
        farewell_.reset();
    }
    if (fd_ >= 0) {
        flush_out();
        hang_up();
    }
}

// ---- requests -------------------------------------------------------------------------------

unsigned session::startup() {
    if (startups_++ == 0 && !bindings_.registered()) {
        bindings_.register_client();
    }
    return startups_;
}

void session::pack_replies() {
    // What was queued before the hello asked goes out as it was made, one reply a message.
    flush_out();
    pack_replies_ = true;
}

bool session::cleanup(uint64_t request, protocol::reply& r) {
    --startups_;
    r["startups"] = startups_;
    if (startups_ != 0) {
        return true;
    }
    farewell_.emplace(request, std::move(r)); // answered last, by finish()
    end(false);
    return false;
}

session::binding& session::provider_for(const std::string& connection) {
    binding* b = bindings_.find(connection);
    if (b == nullptr) {
        throw bad_request(fmt::format("no connection '{}' with a call manager", connection));
    }
    return *b;
}

session::binding& session::provider_of_vc(callmgmt::vc_handle v) {
    auto it = vc_connection_.find(v);
    if (it == vc_connection_.end()) {
        throw stale_handle(fmt::format("no VC {} of this session", v));
    }
    binding* b = bindings_.find(it->second);
    if (b == nullptr) {
        // The binding is gone, and the VC with its call manager: this answer is the handle's
        // last (the next use of it is INVALID_HANDLE).
        const std::string connection = it->second;
        call_gone(v);
        release_vc(v);
        throw binding_gone(fmt::format("VC {}: the call manager of connection '{}' has "
                                       "detached (the connection went away); the VC is gone",
                                       v, connection));
    }
    return *b;
}

protocol::reply session::refused(const binding& b, callmgmt::status s) const {
    return ndis_reply(s, bindings_.last_error(b, s));
}

void session::hold_vc(callmgmt::vc_handle v, const std::string& connection, bool created) {
    vc_connection_[v] = connection;
    if (created) {
        created_vcs_.insert(v);
    }
}

void session::release_vc(callmgmt::vc_handle v) {
    vc_connection_.erase(v);
    created_vcs_.erase(v);
}

void session::hold_party(callmgmt::party_handle p, callmgmt::vc_handle v) {
    if (p != 0) {
        party_vc_[p] = v;
    }
}

callmgmt::vc_handle session::vc_of_party(callmgmt::party_handle p) const {
    auto it = party_vc_.find(p);
    if (it == party_vc_.end()) {
        throw stale_handle(fmt::format("no party {} of this session", p));
    }
    return it->second;
}

void session::await_drop(callmgmt::party_handle p, uint64_t request) {
    pending_drops_[p] = request;
}

void session::await_close(callmgmt::vc_handle v, uint64_t request) {
    pending_closes_[v] = request;
}

void session::await_lookup(nsp::lookup_handle h, uint64_t request) {
    session_host& srv = srv_;
    const uint64_t sid = id_;
    srv_.loop().post([&srv, sid, request, h] {
        if (session* s = srv.find_session(sid)) {
            s->complete_lookup(request, h);
        }
    });
}

void session::complete_lookup(uint64_t request, nsp::lookup_handle h) {
    auto r = srv_.names().complete_next(id_, h);
    if (!r) {
        // The session ended meanwhile, and its lookups with it.
        r = nsp::name_space::next_result{wsa::cancelled, {}, 0};
    }
    contract_stats::process().count("nsp", "lookup_next_complete", nsp::wsa_name(r->status));
    protocol::reply out = wsa_reply(r->status, r->status == wsa::cancelled
                                                   ? "the lookup ended before this NextEx completed"
                                                   : "");
    out["lookup"] = h;
    if (r->status == wsa::no_error) {
        out["result"] = r->result;
    } else if (r->status == wsa::fault) {
        out["needed"] = r->needed;
        out.set_message(fmt::format("the result needs a buffer of {} bytes", r->needed));
    }
    reply(request, std::move(out));
}

// ---- completions ----------------------------------------------------------------------------

// A drop or close completes RESOURCES only when it was done but its close data could not be
// sent (call_management.hh).
static std::string close_data_not_sent(callmgmt::status s) {
    return s == callmgmt::status::resources
               ? "done, but its close data could not be sent (no buffer, or the worker's "
                 "control ring full): the party got no close data"
               : std::string();
}

void session::drop_party_complete(void* cb, callmgmt::status s, callmgmt::party_handle p, void*) {
    auto it = pending_drops_.find(p);
    if (it != pending_drops_.end()) {
        protocol::reply r = ndis_reply(s, close_data_not_sent(s));
        r["party"] = p;
        reply(it->second, std::move(r));
        pending_drops_.erase(it);
    }
    bindings_.completed(cb);
}

void session::close_call_complete(void* cb, callmgmt::status s, callmgmt::vc_handle v,
                                  callmgmt::party_handle, void*) {
    auto it = pending_closes_.find(v);
    if (it != pending_closes_.end()) {
        protocol::reply r = ndis_reply(s, close_data_not_sent(s));
        r["vc"] = v;
        reply(it->second, std::move(r));
        pending_closes_.erase(it);
    }
    call_gone(v);
    bindings_.completed(cb);
}

void session::incoming_close_call(void*, callmgmt::status reason, callmgmt::vc_handle v, void*) {
    call_gone(v);
    send_event(
        {{"event", "incoming_close_call"}, {"vc", v}, {"status", callmgmt::status_name(reason)}});
}

void session::incoming_drop_party(void*, callmgmt::status reason, callmgmt::party_handle p, void*) {
    party_vc_.erase(p);
    send_event({{"event", "incoming_drop_party"},
                {"party", p},
                {"status", callmgmt::status_name(reason)}});
}

// A VC the session created stays (deactivated, for reuse or delete_vc); one the call manager
// created is gone with its call.
void session::call_gone(callmgmt::vc_handle v) {
    std::erase_if(party_vc_, [v](const auto& e) { return e.second == v; });
    if (created_vcs_.count(v) == 0) {
        vc_connection_.erase(v);
    }
}

// ---- framing --------------------------------------------------------------------------------

void session::read_some() {
    std::vector<char>& buf = srv_.receive_buffer();
    const size_t slot = srv_.config().max_message_bytes;
    const size_t slots = srv_.receive_slots();
    mmsghdr msgs[session_host::max_receive_slots];
    iovec iov[session_host::max_receive_slots];
    // Bounded work per wake-up, counted in requests (a batch is all of its own): a chatty
    // client cannot monopolise the control thread.
    for (size_t read = 0; read < 64 && fd_ >= 0 && !ending_;) {
        const size_t want = std::min(slots, 64 - read);
        for (size_t i = 0; i < want; ++i) {
            iov[i] = {buf.data() + i * slot, slot};
            msgs[i] = {};
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        const int n = recvmmsg(fd_, msgs, unsigned(want), MSG_DONTWAIT | MSG_TRUNC, nullptr);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                return;
            }
            end(true); // reset: the peer is gone
            return;
        }
        // Messages after one that ends the session (its last goodbye) are not answered, as if
        // they had not been read.
        for (int i = 0; i < n && fd_ >= 0 && !ending_; ++i) {
            const size_t len = msgs[i].msg_len;
            if (len == 0) {
                end(startups_ > 0); // EOF: Rundown if it never said its last goodbye
                return;
            }
            if ((msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0 || len > slot) {
                reply_unaddressed(wsa_reply(
                    wsa::invalid,
                    fmt::format("message of {} bytes exceeds the limit of {}", len, slot)));
                ++read;
                continue;
            }
            read += handle_message(std::string_view(buf.data() + i * slot, len));
        }
        if (size_t(n) < want) {
            return; // nothing more waiting
        }
    }
}

size_t session::handle_message(std::string_view text) {
    const json msg = json::parse(text, nullptr, false);
    if (!msg.is_array()) {
        handle(msg);
        return 1;
    }
    // A batch: refused whole when it cannot be taken whole, so that nothing of it is done.
    if (msg.empty() || msg.size() > max_batch) {
        reply_unaddressed(wsa_reply(
            wsa::invalid, fmt::format("malformed batch: {} requests (a batch holds 1 to {})",
                                      msg.size(), max_batch)));
        return 1;
    }
    for (const json& req : msg) {
        if (fd_ < 0) {
            break; // run down: nobody to answer
        }
        handle(req); // after the last goodbye: answered, not done (README "Control socket")
    }
    return msg.size();
}

void session::handle(const json& req) {
    if (req.is_discarded() || !req.is_object()) {
        reply_unaddressed(wsa_reply(wsa::invalid, "malformed request: not a JSON object"));
        return;
    }
    auto id_it = req.find("id");
    if (id_it == req.end() || !id_it->is_number_unsigned()) {
        reply_unaddressed(
            wsa_reply(wsa::invalid, "malformed request: 'id' must be an unsigned integer"));
        return;
    }
    request r{*this, srv_, id_it->get<uint64_t>(), req};
    // The operation's label in vcplane_contract_operations_total: only names the handler
    // table knows, so that a client cannot grow the metrics without bound.
    std::string label = "request";
    std::optional<protocol::reply> out;
    bool view = false;
    try {
        const std::string op = str(req, "op");
        if (ending_) {
            out = status_reply("nsp", "WSANOTINITIALISED", wsa_not_initialised,
                               "after the session's last goodbye: not done");
        } else if (op != "hello" && startups_ == 0) {
            out = status_reply("nsp", "WSANOTINITIALISED", wsa_not_initialised, "say hello first");
        } else if (const handler_entry* h = find_handler(op)) {
            label = op;
            view = h->view;
            out = h->handle(r);
        } else {
            label = "unknown";
            throw unknown_operation(fmt::format("unknown operation '{}'", op));
        }
    } catch (const unknown_operation& e) {
        out = wsa_reply(wsa::not_supported, e.what());
    } catch (const bad_request& e) {
        out = wsa_reply(wsa::invalid, fmt::format("{}: {}", label, e.what()));
    } catch (const stale_handle& e) {
        out = ndis_reply(callmgmt::status::invalid_handle, e.what()); // no call manager saw it
    } catch (const binding_gone& e) {
        out = ndis_reply(callmgmt::status::nointerface, e.what());
    } catch (const json::exception& e) {
        out = wsa_reply(wsa::invalid, fmt::format("{}: {}", label, e.what()));
    }
    if (!out) {
        return; // answered when the operation completes (counted where it pended)
    }
    if (!r.counted_by_engine) {
        contract_stats::process().count(out->family(), label, out->status());
    }
    reply(r.id, std::move(*out), view);
}

void session::reply(uint64_t request, protocol::reply r, bool view) {
    queue(
        request, [&] { return r.text(request); }, view ? nullptr : &r);
}

void session::reply_unaddressed(const protocol::reply& r) {
    queue(std::nullopt, [&] { return r.text(std::nullopt); });
}

void session::send_event(const json& e) {
    if (fd_ >= 0 && !ending_) {
        queue(std::nullopt, [&] { return e.dump(); });
    }
}

template <typename MakeText>
void session::queue(std::optional<uint64_t> id, MakeText&& make_text,
                    const protocol::reply* short_form) {
    if (fd_ < 0) {
        return;
    }
    try {
        alloc_faults::throw_if_failing(alloc_faults::site::reply);
        std::string text = make_text();
        if (!fit_send_buffer(text.size() + (pack_replies_ ? 2 : 0))) { // [reply] when packed
            // Not sendable at all: the request still gets its one reply, and the session lives.
            const protocol::reply refused = wsa_reply(
                wsa::not_enough_memory,
                fmt::format("reply of {} bytes exceeds the control socket's send buffer of {} "
                            "bytes (raise net.core.wmem_max)",
                            text.size(), send_buffer_));
            log::warning("session {}: {}", id_, refused.message());
            text = refused.text(id);
        }
        out_.push_back(std::move(text));
    } catch (const std::bad_alloc&) {
        if (!queue_memory_refusal(id, short_form)) {
            log::error("session {}: out of memory for a reply; disconnecting it", id_);
            out_.clear();
            end(true);
            return;
        }
    }
    if (out_.size() >= srv_.config().max_queued_replies) {
        flush_out(); // the limit counts what the client has not read, not what waits for us
        if (fd_ < 0) {
            return;
        }
    }
    if (out_.size() > srv_.config().max_queued_replies) {
        log::warning("session {}: {} replies unread; disconnecting it", id_, out_.size());
        out_.clear();
        end(true);
        return;
    }
    flush_soon();
}

// Replies made while the loop handles its events go out together when the handlers are done
// (posted work runs then, before the idle hook): one sendmmsg for a burst of requests instead
// of one send each, and the client is woken once. A session freed in between is looked up by
// its id.
void session::flush_soon() {
    if (flush_posted_ || want_out_) {
        return; // already due, or waiting for EPOLLOUT, which flushes
    }
    flush_posted_ = true;
    session_host& srv = srv_;
    const uint64_t id = id_;
    srv_.loop().post([&srv, id] {
        if (session* s = srv.find_session(id)) {
            s->flush_posted_ = false;
            s->flush_out();
        }
    });
}

bool session::queue_memory_refusal(std::optional<uint64_t> id,
                                   const protocol::reply* short_form) noexcept {
    // An event (no id) is dropped: no request waits for it. A reply is written into the
    // buffer kept for this (no allocation while it fits) and queued.
    if (!id) {
        return true;
    }
    bool queued = false;
    try {
        memory_refusal_.clear();
        if (short_form != nullptr) {
            short_form->write_short(*id, memory_refusal_);
        } else {
            fmt::format_to(std::back_inserter(memory_refusal_),
                           R"({{"id":{},"family":"nsp","status":"{}","code":{},)"
                           R"("message":"out of memory for the reply"}})",
                           *id, nsp::wsa_name(wsa::not_enough_memory),
                           int64_t(wsa::not_enough_memory));
        }
        out_.push_back(std::move(memory_refusal_));
        queued = true;
        log::warning("session {}: out of memory for the reply to request {}", id_, *id);
        memory_refusal_.reserve(memory_refusal_room);
    } catch (const std::bad_alloc&) {
    }
    return queued;
}

bool session::fit_send_buffer(size_t bytes) {
    const auto read_size = [this] {
        int have = 0;
        socklen_t len = sizeof(have);
        getsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &have, &len);
        send_buffer_ = size_t(have);
    };
    if (send_buffer_ == 0) {
        read_size();
    }
    if (bytes + send_overhead <= send_buffer_) {
        return true;
    }
    // The kernel doubles what it is asked for; SO_SNDBUFFORCE passes wmem_max with
    // CAP_NET_ADMIN, SO_SNDBUF stops at it.
    const int want = int(std::min<size_t>(bytes + send_overhead, INT32_MAX / 2));
    if (setsockopt(fd_, SOL_SOCKET, SO_SNDBUFFORCE, &want, sizeof(want)) != 0) {
        setsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &want, sizeof(want));
    }
    read_size();
    return bytes + send_overhead <= send_buffer_;
}

void session::flush_out() {
    // A packed message is gathered from the queued replies in place: "[", a reply, ",", ...,
    // "]", so that packing allocates nothing. One message holds replies while they fit in
    // max_message_bytes and in the send buffer (a SEQPACKET message is refused whole past it),
    // and at least one: each reply alone was made to fit when it was queued.
    constexpr size_t burst = 64;
    constexpr size_t max_iov = 1024; // IOV_MAX: the most one message may gather
    static constexpr char open[] = "[", comma[] = ",", close[] = "]";
    const auto piece = [](const char* p) { return iovec{const_cast<char*>(p), 1}; };
    const size_t most = srv_.config().max_message_bytes;
    const size_t limit = send_buffer_ > send_overhead // 0: not read yet (no reply fitted)
                             ? std::min(most, send_buffer_ - send_overhead)
                             : most;
    mmsghdr msgs[burst];
    iovec iov[max_iov];
    size_t replies_in[burst];
    while (!out_.empty() && fd_ >= 0) {
        size_t n = 0, used = 0, taken = 0;
        while (n < burst && taken < out_.size()) {
            iovec* first = &iov[used];
            size_t in = 0, bytes = 0;
            if (!pack_replies_) {
                iov[used++] = {out_[taken].data(), out_[taken].size()};
                in = 1;
            } else {
                if (used + 3 > max_iov) {
                    break; // no room for even one reply: the next round sends it
                }
                iov[used++] = piece(open);
                // Room for a comma and the reply, and the closing bracket.
                while (taken + in < out_.size() && used + (in != 0 ? 3 : 2) <= max_iov) {
                    const std::string& r = out_[taken + in];
                    if (in != 0 && bytes + 2 + r.size() + 1 > limit) {
                        break;
                    }
                    if (in != 0) {
                        iov[used++] = piece(comma);
                    }
                    iov[used++] = {const_cast<char*>(r.data()), r.size()};
                    bytes += r.size() + (in != 0 ? 1 : 0);
                    ++in;
                }
                iov[used++] = piece(close);
            }
            msgs[n] = {};
            msgs[n].msg_hdr.msg_iov = first;
            msgs[n].msg_hdr.msg_iovlen = size_t(&iov[used] - first);
            replies_in[n++] = in;
            taken += in;
        }
        const int sent = sendmmsg(fd_, msgs, unsigned(n), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (!want_out_) {
                    want_out_ = true;
                    watch_for();
                }
                return;
            }
            if (errno != EPIPE && errno != ECONNRESET) { // not just a client that went away
                log::warning("session {}: send: {}; disconnecting it", id_, std::strerror(errno));
            }
            out_.clear();
            end(true);
            return;
        }
        size_t done = 0;
        for (int i = 0; i < sent; ++i) {
            done += replies_in[i];
        }
        out_.erase(out_.begin(), out_.begin() + ptrdiff_t(done));
    }
    if (want_out_ && fd_ >= 0) {
        want_out_ = false;
        watch_for();
    }
}

void session::hang_up() {
    if (fd_ >= 0) {
        // What is queued and fits goes out first, as it would have had each reply been sent
        // when it was made; a peer that is gone just does not read it (the session is ending:
        // a failed send ends nothing more).
        flush_out();
        srv_.loop().unwatch(fd_);
        close(fd_);
        fd_ = -1;
    }
    out_.clear();
}

// Input while the session lasts, output while replies wait.
void session::watch_for() {
    srv_.loop().modify(fd_, (ending_ ? 0u : uint32_t(EPOLLIN)) | (want_out_ ? EPOLLOUT : 0u));
}

} // namespace vcplane
