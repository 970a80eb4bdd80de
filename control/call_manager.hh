#pragma once
// Threading: control thread only. It is the only writer of its VCs' and parties' entries in
// the tables (published with one pointer store, dataplane/rcu.hh); workers read them. An entry
// it unpublishes is freed, and its completion runs, only after a grace period
// (grace_period_source), on the control thread, never inside the request that retired it.
//
// The call manager of one connection: the provider of the call-management NPI
// (contracts/callmgmt/call_management.hh) for calls whose ingress is that connection. Clients reach
// it only through an NMR binding; it publishes VCs and party arrays into the tables and retires
// them after grace periods (docs/design.md §4–5, docs/contracts.md §4).
//
// VC states: created (by create_vc, or deactivated after a close) -> active (make_call) ->
// closing (close_call, until its grace period passed) -> created again. Only the creator
// deletes a VC; a VC the call manager created for make_call(vc = 0) is deleted by it once the
// close completed.
//
// When its connection goes away the call manager deregisters: each bound client is detached,
// which closes that client's calls here (incoming_close_call after the grace period); the
// detach is PENDING until those completions ran. When another connection goes away or down,
// parties leaving through it are dropped (incoming_drop_party), and a call that would be left
// without a party is closed instead (the last-party rule).

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "contracts/callmgmt/call_management.hh"
#include "contracts/nmr/nmr.hh"
#include "control/grace_period.hh"
#include "control/status_snapshot.hh"
#include "control/switch_state.hh"

namespace vcplane {

// A VC's state in its call manager: created (or deactivated after a close), carrying a call,
// or closing (its grace period has not passed).
enum class vc_phase { created, active, closing };

class call_manager final : public nmr::provider, public callmgmt::provider_dispatch {
public:
    // Sends close data to a party (a G-ACh frame on MPLS), queued behind the copies it got
    // (party_slot: its counters, which say which worker made them). Runs after the party's
    // grace period. False when it could not be sent (no buffer, the worker's ring full): the
    // completion then says RESOURCES.
    using close_data_sender =
        std::function<bool(const connection_state& egress, const party_spec& party,
                           uint32_t party_slot, std::span<const uint8_t> data)>;

    call_manager(std::string connection, switch_state& state, grace_period_source& gp,
                 nmr::registrar& reg, close_data_sender send_close_data);
    ~call_manager() override;

    nmr::status register_provider();
    // Deregisters (closing every call of every client here); done runs on the control thread
    // once the deregistration is complete.
    void deregister(std::function<void()> done);
    // Connection `gone` went away or down: drop the parties that leave through it.
    void egress_gone(const std::string& gone);
    // This call manager's own connection lost its link: close every call entering through it.
    void ingress_down();

    const std::string& connection() const { return connection_; }
    struct call_info {
        callmgmt::vc_handle vc;
        std::string name;
        uint32_t key;
        std::string owner; // the client's module name
        bool multipoint;
        traffic_contract flow;
        std::vector<std::pair<callmgmt::party_handle, party_spec>> parties;
        call_encapsulation encap;
        std::vector<party_action> actions; // actions[i]: what parties[i]'s copies become
    };
    std::vector<call_info> calls() const; // the active ones
    // Appends the active VCs and parties that have counter slots of their own.
    void list_series(traffic_series_list& out) const;
    size_t active_calls() const;
    size_t active_parties() const;
    size_t vc_count() const { return vcs_.size(); }

    // nmr::provider
    nmr::status attach_client(nmr::handle binding, void* provider_context,
                              const nmr::registration_instance& client, void* client_binding,
                              const void* client_dispatch, void** provider_binding,
                              const void** provider_dispatch) override;
    nmr::status detach_client(void* provider_binding) override;
    void cleanup_binding_context(void* provider_binding) override;

    // callmgmt::provider_dispatch
    callmgmt::status create_vc(void* pb, void* client_vc_ctx, callmgmt::vc_handle* out) override;
    callmgmt::status delete_vc(void* pb, callmgmt::vc_handle vc) override;
    callmgmt::status make_call(void* pb, callmgmt::vc_handle vc, const callmgmt::call_spec& call,
                               const party_spec& first, void* client_vc_ctx, void* client_party_ctx,
                               callmgmt::vc_handle* out_vc,
                               callmgmt::party_handle* out_party) override;
    callmgmt::status add_party(void* pb, callmgmt::vc_handle vc, const party_spec& party,
                               void* client_party_ctx, callmgmt::party_handle* out) override;
    callmgmt::status drop_party(void* pb, callmgmt::party_handle party,
                                std::span<const uint8_t> close_data) override;
    callmgmt::status close_call(void* pb, callmgmt::vc_handle vc, callmgmt::party_handle last,
                                std::span<const uint8_t> close_data) override;
    callmgmt::status modify_call_qos(void* pb, callmgmt::vc_handle vc,
                                     const traffic_contract& flow) override;
    std::string last_error(void* pb) const override;

private:
    // A call-management client attached to this manager (one NMR binding).
    struct binding {
        nmr::handle handle;
        void* client_binding;
        callmgmt::client_dispatch* client;
        std::string client_name;
        std::string last_error;
        unsigned pending = 0; // completions not yet delivered
        bool detaching = false;
    };
    // A party as it was accepted: checked once (spec and action), with its handle.
    struct party_record : checked_party {
        callmgmt::party_handle id;
        void* client_ctx;
        uint32_t stats_slot; // counter_slots::remainder when it has none of its own
    };
    // A call's parties in the order of its published party array (a party's index here is
    // its index there). A change finds a party by handle or name, and leaves the others where
    // they are in memory, without walking every record: what lets a change to a 1024-party
    // call cost about what it costs a small one.
    class party_records {
    public:
        class iterator {
        public:
            explicit iterator(const std::unique_ptr<party_record>* at)
                : at_(at) {}
            const party_record& operator*() const { return **at_; }
            const party_record* operator->() const { return at_->get(); }
            iterator& operator++() {
                ++at_;
                return *this;
            }
            bool operator!=(const iterator& o) const { return at_ != o.at_; }

        private:
            const std::unique_ptr<party_record>* at_;
        };
        iterator begin() const { return iterator(records_.data()); }
        iterator end() const { return iterator(records_.data() + records_.size()); }
        size_t size() const { return records_.size(); }
        bool empty() const { return records_.empty(); }
        const party_record& operator[](size_t i) const { return *records_[i]; }
        const party_record& front() const { return *records_.front(); }
        // The index of the party with handle id; size() when there is none.
        size_t index_of(callmgmt::party_handle id) const;
        bool has_name(const std::string& name) const;

        void push_back(party_record p);
        // Removes the party at `at` and hands its record over.
        party_record erase(size_t at);
        void clear();

    private:
        // A call of up to this many parties is searched record by record; a larger one builds
        // the index below (and keeps it), so that a small call, most of a large switch's,
        // costs no index memory and a large one no walk through its records.
        static constexpr size_t indexed_from = 16;
        // Indexed: ids_ mirrors records_ (empty otherwise, or when the call has no party).
        bool indexed() const { return !ids_.empty(); }

        std::vector<std::unique_ptr<party_record>> records_;
        std::vector<callmgmt::party_handle> ids_; // records_[i]->id, scanned without the records
        std::unordered_multiset<std::string> names_;
    };
    struct vc_record {
        callmgmt::vc_handle id;
        binding* owner;
        bool cm_created;
        void* client_ctx;
        vc_phase state = vc_phase::created;
        callmgmt::call_spec call;
        party_records parties;
        vc* circuit = nullptr;                          // published while active
        uint32_t stats_slot = counter_slots::remainder; // while active
    };

    callmgmt::status counted(const char* op, callmgmt::status s);
    // Every completion and incoming indication is counted once, with its own status.
    static void completed(const char* completion, callmgmt::status s);
    // The requests, uncounted (the overrides above count their outcome).
    callmgmt::status create_vc_impl(void* pb, void* client_vc_ctx, callmgmt::vc_handle* out);
    callmgmt::status delete_vc_impl(void* pb, callmgmt::vc_handle vc);
    callmgmt::status make_call_impl(void* pb, callmgmt::vc_handle vc,
                                    const callmgmt::call_spec& call, const party_spec& first,
                                    void* client_vc_ctx, void* client_party_ctx,
                                    callmgmt::vc_handle* out_vc, callmgmt::party_handle* out_party);
    callmgmt::status add_party_impl(void* pb, callmgmt::vc_handle vc, const party_spec& party,
                                    void* client_party_ctx, callmgmt::party_handle* out);
    callmgmt::status drop_party_impl(void* pb, callmgmt::party_handle party,
                                     std::span<const uint8_t> close_data);
    callmgmt::status close_call_impl(void* pb, callmgmt::vc_handle vc, callmgmt::party_handle last,
                                     std::span<const uint8_t> close_data);
    callmgmt::status modify_call_qos_impl(void* pb, callmgmt::vc_handle vc,
                                          const traffic_contract& flow);
    callmgmt::status fail(binding& b, callmgmt::status s, std::string why);
    // Checks a traffic_contract and fills in the default burst; nullopt when it is acceptable.
    // What make_call checks before it books or builds anything: the VC it names, the ingress
    // link, the key, the traffic contract (whose default burst it fills in).
    std::optional<table_error> accept_call(binding& b, const connection_state& in,
                                           callmgmt::vc_handle vh, callmgmt::call_spec& call);
    // A new party (make_call's first, add_party's): a valid party whose egress (`out`,
    // nullptr when p names no connection) has a link; `into` is the party checked.
    std::optional<table_error> accept_party(const connection_state& in, const connection_state* out,
                                            const party_spec& p, const call_encapsulation& encap,
                                            checked_party& into) const;
    std::optional<table_error> accept_flow(const connection_state& in,
                                           traffic_contract& flow) const;
    vc_record* owned_vc(binding& b, callmgmt::vc_handle id);
    callmgmt::status check_close_data(binding& b, const party_record& p,
                                      std::span<const uint8_t> data);
    uint64_t booking(const vc_record& r) const { return booked_bps(r.call.flow); }
    void release_bookings(const vc_record& r);
    static std::vector<checked_party> parties_of(const vc_record& r);
    static std::vector<uint32_t> slots_of(const vc_record& r);
    // Moves every party's booking from `from_bps` to `to_bps` (the VC's contract changes); on a
    // refusal puts the old bookings back and returns the connection that refused.
    std::optional<std::string> rebook(const vc_record& r, uint64_t from_bps, uint64_t to_bps);
    // Publishes `next` as r's party array and frees the old one after a grace period (an
    // array embedded in the vc's block goes with the vc instead).
    void replace_parties(vc_record& r, party_set* next);
    // Republishes r's party array without `leaving`; returns false (and changes nothing)
    // when the new array cannot be built.
    bool republish_without(binding& b, vc_record& r, std::span<const size_t> leaving);
    // A dropped party (its handle dead already) waits in a slot of leaving_ for its grace
    // period: the deferred completion names the slot, which keeps what it captures within
    // std::function's own storage, so that a drop allocates nothing for its completion.
    struct leaving_party {
        binding* owner = nullptr;
        party_record record;
        std::vector<uint8_t> close_data;
    };
    uint32_t park_leaving(leaving_party p);
    // After the grace period: frees the party's counters, sends its close data, tells the
    // client (drop_party_complete).
    void complete_drop(uint32_t slot);
    // Sends p's close data, if any: SUCCESS (sent, or none), or RESOURCES (could not be).
    callmgmt::status send_close(const party_spec& p, uint32_t party_slot,
                                std::span<const uint8_t> data);
    // Unpublishes an active call; after the grace period: frees it, sends close data, tells
    // the client (close_call_complete, or incoming_close_call when `incoming`).
    void retire(vc_record& r, callmgmt::party_handle last, std::vector<uint8_t> close_data,
                bool incoming);
    void begin_op(binding& b);
    void end_op(binding& b);

    std::string connection_;
    switch_state& state_;
    grace_period_source& gp_;
    nmr::registrar& reg_;
    close_data_sender send_close_data_;
    nmr::module_id module_;
    nmr::handle registration_;
    std::map<callmgmt::vc_handle, vc_record> vcs_;
    std::unordered_map<callmgmt::party_handle, callmgmt::vc_handle> party_index_;
    std::vector<leaving_party> leaving_; // slots reused through free_leaving_
    std::vector<uint32_t> free_leaving_;
};

} // namespace vcplane
