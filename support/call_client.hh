#pragma once
// A call-management client for tests and benchmarks: bound to every call manager through
// client_bindings, it records every completion, and every one that carries PENDING as a
// violation (docs/contracts.md §5.6: the tests expect none). pump() runs the control loop
// once; the destructor deregisters and pumps until the deregistration is complete.

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "contracts/callmgmt/call_management.hh"
#include "contracts/callmgmt/client_bindings.hh"

namespace vcplane::test {

class call_client : public callmgmt::client_dispatch {
public:
    using cstatus = callmgmt::status;
    using vc_handle = callmgmt::vc_handle;
    using party_handle = callmgmt::party_handle;

    call_client(nmr::registrar& reg, std::function<void()> pump)
        : bindings_(reg, *this, "test-client")
        , pump_(std::move(pump)) {
        bindings_.register_client();
    }
    ~call_client() override {
        if (bindings_.deregister() == nmr::status::pending) {
            bindings_.wait_for_deregister(pump_);
        }
    }

    void record(uint64_t handle, std::string what, cstatus s) {
        if (s == cstatus::pending) {
            violations.push_back(what + " carried PENDING"); // no completion ever does
        }
        events[handle].push_back(what + ":" + callmgmt::status_name(s));
    }
    void drop_party_complete(void* cb, cstatus s, party_handle p, void*) override {
        record(p, "drop_complete", s);
        bindings_.completed(cb);
    }
    void close_call_complete(void* cb, cstatus s, vc_handle v, party_handle last, void*) override {
        record(v, "close_complete(" + std::to_string(last) + ")", s);
        bindings_.completed(cb);
    }
    void incoming_close_call(void*, cstatus s, vc_handle v, void*) override {
        record(v, "incoming_close", s);
    }
    void incoming_drop_party(void*, cstatus s, party_handle p, void*) override {
        record(p, "incoming_drop", s);
    }

    // A request through the call manager of `conn` (NOINTERFACE when there is none).
    template <typename F>
    cstatus call(const std::string& conn, F&& f) {
        auto* b = bindings_.find(conn);
        return b == nullptr ? cstatus::nointerface : bindings_.request(*b, std::forward<F>(f));
    }
    cstatus create(const std::string& conn, vc_handle* out) {
        return call(conn, [&](auto& d, void* pb) { return d.create_vc(pb, nullptr, out); });
    }
    cstatus remove(const std::string& conn, vc_handle v) {
        return call(conn, [&](auto& d, void* pb) { return d.delete_vc(pb, v); });
    }
    cstatus make(const std::string& conn, vc_handle v, const callmgmt::call_spec& c,
                 const party_spec& first, vc_handle* out_vc, party_handle* out_party) {
        return call(conn, [&](auto& d, void* pb) {
            return d.make_call(pb, v, c, first, nullptr, nullptr, out_vc, out_party);
        });
    }
    cstatus add(const std::string& conn, vc_handle v, const party_spec& p, party_handle* out) {
        return call(conn, [&](auto& d, void* pb) { return d.add_party(pb, v, p, nullptr, out); });
    }
    cstatus drop(const std::string& conn, party_handle p, std::vector<uint8_t> data = {}) {
        return call(conn, [&](auto& d, void* pb) { return d.drop_party(pb, p, data); });
    }
    cstatus close(const std::string& conn, vc_handle v, party_handle last,
                  std::vector<uint8_t> data = {}) {
        return call(conn, [&](auto& d, void* pb) { return d.close_call(pb, v, last, data); });
    }
    cstatus qos(const std::string& conn, vc_handle v, traffic_contract flow) {
        return call(conn, [&](auto& d, void* pb) { return d.modify_call_qos(pb, v, flow); });
    }
    std::string error(const std::string& conn) {
        const auto* b = bindings_.find(conn);
        return b->ref.dispatch->last_error(b->ref.provider_binding);
    }
    // Pumps until `handle` has a completion (or the pump budget runs out).
    bool wait_for(uint64_t handle, int pumps = 1000) {
        for (int i = 0; i < pumps && events[handle].empty(); ++i) {
            pump_();
        }
        return !events[handle].empty();
    }

    const callmgmt::client_bindings& bindings() const { return bindings_; }
    std::map<uint64_t, std::vector<std::string>> events;
    // Broken contract rules seen (a completion with PENDING): the tests expect none.
    std::vector<std::string> violations;

private:
    callmgmt::client_bindings bindings_;
    std::function<void()> pump_;
};

inline party_spec party(const std::string& name, const std::string& conn, uint32_t key,
                        uint8_t mac_last = 1) {
    return party_spec{name, conn, key, {2, 0, 0, 0, 1, mac_last}};
}

inline callmgmt::call_spec call(const std::string& name, uint32_t key, bool multipoint = true,
                                traffic_contract flow = {}) {
    return callmgmt::call_spec{name, key, multipoint, flow};
}

} // namespace vcplane::test
