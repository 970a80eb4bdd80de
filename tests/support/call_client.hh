#pragma once
// A call-management client for tests: an NMR client that attaches to every call manager,
// wraps each request in call_through(), and records every completion, checking that none
// carries PENDING (docs/contracts.md §5.6). pump() runs the control loop once; the
// destructor deregisters and pumps until the deregistration is complete.

#include <functional>
#include <gtest/gtest.h>
#include <map>
#include <string>
#include <vector>

#include "contracts/callmgmt/call_management.hh"

namespace vcplane::test {

class call_client : public nmr::client, public callmgmt::client_dispatch {
public:
    using cstatus = callmgmt::status;
    using vc_handle = callmgmt::vc_handle;
    using party_handle = callmgmt::party_handle;

    call_client(nmr::registrar& reg, std::function<void()> pump)
        : reg_(reg)
        , pump_(std::move(pump)) {
        nmr::registration_instance inst;
        inst.npi = &callmgmt::npi;
        inst.module = &id_;
        reg_.register_client(*this, inst, this, &registration_);
    }
    ~call_client() override {
        if (reg_.deregister_client(registration_) == nmr::status::pending) {
            reg_.wait_for_deregister_complete(registration_, pump_);
        }
    }

    nmr::status attach_provider(nmr::handle b, void*,
                                const nmr::registration_instance& p) override {
        callmgmt::provider_ref ref;
        ref.binding = b;
        ref.connection = *static_cast<const std::string*>(p.npi_specific);
        const void* d = nullptr;
        const nmr::status s = reg_.client_attach_provider(
            b, this, static_cast<callmgmt::client_dispatch*>(this), &ref.provider_binding, &d);
        if (s == nmr::status::success) {
            ref.dispatch = static_cast<callmgmt::provider_dispatch*>(const_cast<void*>(d));
            providers[ref.connection] = ref;
        }
        return s;
    }
    nmr::status detach_provider(void*) override { return nmr::status::success; }
    void cleanup_binding_context(void*) override { ++cleanups; }

    void record(uint64_t handle, std::string what, cstatus s) {
        EXPECT_NE(s, cstatus::pending) << what; // no completion ever carries PENDING
        events[handle].push_back(what + ":" + callmgmt::status_name(s));
    }
    void drop_party_complete(void*, cstatus s, party_handle p, void*) override {
        record(p, "drop_complete", s);
    }
    void close_call_complete(void*, cstatus s, vc_handle v, party_handle last, void*) override {
        record(v, "close_complete(" + std::to_string(last) + ")", s);
    }
    void incoming_close_call(void*, cstatus s, vc_handle v, void*) override {
        record(v, "incoming_close", s);
    }
    void incoming_drop_party(void*, cstatus s, party_handle p, void*) override {
        record(p, "incoming_drop", s);
    }

    template <typename F>
    cstatus call(const std::string& conn, F&& f) {
        auto it = providers.find(conn);
        if (it == providers.end()) {
            return cstatus::nointerface;
        }
        return callmgmt::call_through(reg_, it->second, std::forward<F>(f));
    }
    cstatus create(const std::string& conn, vc_handle* out) {
        return call(conn, [&](auto& d, void* pb) { return d.create_vc(pb, nullptr, out); });
    }
    cstatus remove(const std::string& conn, vc_handle v) {
        return call(conn, [&](auto& d, void* pb) { return d.delete_vc(pb, v); });
    }
    cstatus make(const std::string& conn, vc_handle v, const callmgmt::call_spec& c,
                 const callmgmt::party_spec& first, vc_handle* out_vc, party_handle* out_party) {
        return call(conn, [&](auto& d, void* pb) {
            return d.make_call(pb, v, c, first, nullptr, nullptr, out_vc, out_party);
        });
    }
    cstatus add(const std::string& conn, vc_handle v, const callmgmt::party_spec& p,
                party_handle* out) {
        return call(conn, [&](auto& d, void* pb) { return d.add_party(pb, v, p, nullptr, out); });
    }
    cstatus drop(const std::string& conn, party_handle p, std::vector<uint8_t> data = {}) {
        return call(conn, [&](auto& d, void* pb) { return d.drop_party(pb, p, data); });
    }
    cstatus close(const std::string& conn, vc_handle v, party_handle last,
                  std::vector<uint8_t> data = {}) {
        return call(conn, [&](auto& d, void* pb) { return d.close_call(pb, v, last, data); });
    }
    cstatus qos(const std::string& conn, vc_handle v, callmgmt::flowspec flow) {
        return call(conn, [&](auto& d, void* pb) { return d.modify_call_qos(pb, v, flow); });
    }
    std::string error(const std::string& conn) {
        const auto& p = providers.at(conn);
        return p.dispatch->last_error(p.provider_binding);
    }
    // Pumps until `handle` has a completion (or the pump budget runs out).
    bool wait_for(uint64_t handle, int pumps = 1000) {
        for (int i = 0; i < pumps && events[handle].empty(); ++i) {
            pump_();
        }
        return !events[handle].empty();
    }

    std::map<std::string, callmgmt::provider_ref> providers;
    std::map<uint64_t, std::vector<std::string>> events;
    int cleanups = 0;

private:
    nmr::registrar& reg_;
    std::function<void()> pump_;
    nmr::module_id id_{"test-client"};
    nmr::handle registration_;
};

inline callmgmt::party_spec party(const std::string& name, const std::string& conn, uint32_t key,
                                  uint8_t mac_last = 1) {
    return callmgmt::party_spec{name, conn, key, {2, 0, 0, 0, 1, mac_last}};
}

inline callmgmt::call_spec call(const std::string& name, uint32_t key, bool multipoint = true,
                                callmgmt::flowspec flow = {}) {
    return callmgmt::call_spec{name, key, multipoint, flow};
}

} // namespace vcplane::test
