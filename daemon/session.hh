#pragma once
// One client of the control socket: an NSPv2 session (docs/contracts.md §3.1) and a
// call-management client (docs/contracts.md §4) of every call manager.
//
// Framing: one JSON object per SOCK_SEQPACKET message, or a batch: an array of up to
// max_batch requests in one message, handled in order as if each had come alone. Every request
// the session reads gets exactly one reply, through reply() (the rule: README "Control
// socket"; requests after the last goodbye in its batch are answered, not done); the replies made
// while the loop handles its events are sent together once the handlers are done. A session whose
// hello asked for pack_replies receives them packed: each message an array of one or more replies
// and events, as many as fit in max_message_bytes and the send buffer (a larger one alone). Replies
// wait in a queue while the socket is full, and a client that leaves control.max_queued_replies
// unread is run down. Requests are answered by the handlers of daemon/request_handlers.hh; one that
// pends (drop_party, close_call, lookup_next) is answered by its completion.
//
// End: the last goodbye (Cleanup) stops reading, tears down what the session owns, answers the
// requests still pending (their completions, or cancelled), then the goodbye, then closes. A
// peer that goes away without it is run down: the same teardown, nobody to answer. The
// session is freed (session_host::forget) once its call managers completed the teardown.
// Control thread only.

#include <cstdint>
#include <deque>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include "config/config.hh"
#include "contracts/callmgmt/call_management.hh"
#include "contracts/callmgmt/client_bindings.hh"
#include "contracts/nsp/name_space.hh"
#include "daemon/protocol.hh"

namespace vcplane {

class session_host;

class session final : public callmgmt::client_dispatch {
public:
    using json = nlohmann::json;
    using binding = callmgmt::client_bindings::binding;

    session(session_host& srv, uint64_t id, int fd);
    ~session() override;
    session(const session&) = delete;
    session& operator=(const session&) = delete;

    // Requests in one batch message at most: a message that holds more is refused whole.
    static constexpr size_t max_batch = max_batch_requests;

    uint64_t id() const { return id_; }
    void on_events(uint32_t events);
    // Cleanup (rundown = false) or Rundown: tear down everything the session owns.
    void end(bool rundown);
    // The teardown completed: the last goodbye is answered, the connection closed.
    void finish();

    // Queues r as the one reply to `request`. When its text cannot be made for want of
    // memory, the reply is written short (protocol::reply::write_short: the outcome and the
    // handles), so that a request that changed something is never reported as refused; the
    // reply of a view (which changed nothing) becomes WSA_NOT_ENOUGH_MEMORY.
    void reply(uint64_t request, protocol::reply r, bool view = false);

    // ---- for the request handlers -------------------------------------------------------
    // Startup (hello): the first registers the session as a call-management client.
    unsigned startup();
    // From now on replies and events go out packed (hello's pack_replies).
    void pack_replies();
    // Cleanup (goodbye): sets the count left in the reply; false at zero, when the reply
    // waits for the teardown (finish()) and the session ends.
    bool cleanup(uint64_t request, protocol::reply& r);

    callmgmt::client_bindings& bindings() { return bindings_; }
    binding& provider_for(const std::string& connection);
    binding& provider_of_vc(callmgmt::vc_handle vc);
    // The reply of a request a call manager (or the binding) refused.
    protocol::reply refused(const binding& b, callmgmt::status s) const;

    // What the session holds: VCs by connection (created ones outlive their calls), parties by
    // VC. A handle the session does not hold is a stale_handle.
    void hold_vc(callmgmt::vc_handle vc, const std::string& connection, bool created);
    void release_vc(callmgmt::vc_handle vc);
    bool holds_vc(callmgmt::vc_handle vc) const { return vc_connection_.count(vc) != 0; }
    void hold_party(callmgmt::party_handle party, callmgmt::vc_handle vc);
    callmgmt::vc_handle vc_of_party(callmgmt::party_handle party) const; // throws stale_handle
    void release_party(callmgmt::party_handle party) { party_vc_.erase(party); }

    // A request that pended: answered by its completion.
    void await_drop(callmgmt::party_handle party, uint64_t request);
    void await_close(callmgmt::vc_handle vc, uint64_t request);
    // A NextEx started: answered on the next loop iteration (a lookup_end first cancels it).
    void await_lookup(nsp::lookup_handle lookup, uint64_t request);

    // callmgmt::client_dispatch
    void drop_party_complete(void* cb, callmgmt::status s, callmgmt::party_handle p,
                             void*) override;
    void close_call_complete(void* cb, callmgmt::status s, callmgmt::vc_handle v,
                             callmgmt::party_handle, void*) override;
    void incoming_close_call(void*, callmgmt::status reason, callmgmt::vc_handle v, void*) override;
    void incoming_drop_party(void*, callmgmt::status reason, callmgmt::party_handle p,
                             void*) override;

private:
    void read_some();
    // One message's requests: returns how many it held.
    size_t handle_message(std::string_view text);
    void handle(const json& req);
    void complete_lookup(uint64_t request, nsp::lookup_handle h);
    void send_event(const json& e);
    // A reply to a request whose id could not be read ("id": null).
    void reply_unaddressed(const protocol::reply& r);
    // Queues the text make_text() writes: a reply to request id, or an event (no id). Out of
    // memory, the reply written by `short_form` into the reserved buffer takes its place.
    template <typename MakeText>
    void queue(std::optional<uint64_t> id, MakeText&& make_text,
               const protocol::reply* short_form = nullptr);
    // Makes the socket's send buffer hold one message of `bytes` (a SEQPACKET message must fit
    // in it whole); false when the kernel's limit (net.core.wmem_max without CAP_NET_ADMIN)
    // is below it.
    bool fit_send_buffer(size_t bytes);
    // When a reply cannot be made for want of memory: its request gets short_form's short
    // reply, or (none) WSA_NOT_ENOUGH_MEMORY, written into memory_refusal_. False when even
    // that could not be queued.
    bool queue_memory_refusal(std::optional<uint64_t> id,
                              const protocol::reply* short_form) noexcept;
    void flush_out();
    void flush_soon(); // flush_out once this iteration's handlers are done
    void hang_up();
    void watch_for();
    // The VC's call is gone: its parties with it; a VC the call manager created too.
    void call_gone(callmgmt::vc_handle vc);

    session_host& srv_;
    uint64_t id_;
    int fd_;
    unsigned startups_ = 0;
    bool ending_ = false;
    bool want_out_ = false;
    bool flush_posted_ = false;
    bool pack_replies_ = false;
    size_t send_buffer_ = 0; // SO_SNDBUF as the kernel reports it; 0: not read yet
    // The kernel refuses a SEQPACKET message longer than the send buffer less a small header.
    static constexpr size_t send_overhead = 64;
    std::deque<std::string> out_;
    static constexpr size_t memory_refusal_room = 256;
    std::string memory_refusal_; // reserved: the one reply written without allocating
    std::optional<std::pair<uint64_t, protocol::reply>> farewell_; // the last goodbye's reply
    callmgmt::client_bindings bindings_;
    std::map<callmgmt::vc_handle, std::string> vc_connection_;
    std::map<callmgmt::party_handle, callmgmt::vc_handle> party_vc_;
    std::set<callmgmt::vc_handle> created_vcs_; // by create_vc: outlive their calls
    std::map<callmgmt::party_handle, uint64_t> pending_drops_;
    std::map<callmgmt::vc_handle, uint64_t> pending_closes_;
};

} // namespace vcplane
