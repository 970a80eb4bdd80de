#include "daemon/request_statuses.hh"

#include "contracts/callmgmt/call_management.hh"
#include "contracts/cm/connection_manager.hh"
#include "contracts/nmr/nmr.hh"
#include "contracts/nsp/name_space.hh"
#include "daemon/request_handlers.hh"

namespace vcplane {
namespace {

template <class Table, class Name>
void add_family(request_status_table& t, const char* family, const Table& table, Name name) {
    for (const auto& op : table) {
        for (auto s : op.statuses) {
            t[family][op.operation].insert(name(s));
        }
    }
}

request_status_table build() {
    request_status_table t;
    add_family(t, "nmr", nmr::operation_status_table(), nmr::status_name);
    add_family(t, "cm", cm::operation_result_table(), cm::result_name);
    add_family(t, "ndis", callmgmt::request_statuses(), callmgmt::status_name);
    add_family(t, "nsp", nsp::operation_status_table(), nsp::wsa_name);
    t["nsp"]["lookup_next_complete"] = t["nsp"]["complete_next"];
    for (const auto& e : ndis_handlers()) {
        t["ndis"][e.op].insert({"NOINTERFACE", "INVALID_HANDLE"});
    }
    for (const char* op : {"hello", "goodbye", "status", "connections", "calls", "stats"}) {
        t["nsp"][op].insert("NO_ERROR");
    }
    t["config"]["reload"] = {"SUCCESS", "PARTIAL", "INVALID"};
    t["cm"]["port_attach"] = {"SUCCESS", "UNEXPECTED"};
    t["cm"]["port_detach"] = {"SUCCESS", "INVALID_PARAMETER"};
    // What the session answers any request with, by the handler table's names.
    for (const auto* family :
         {&nsp_handlers(), &ndis_handlers(), &cm_handlers(), &switch_handlers()}) {
        for (const auto& e : *family) {
            t["nsp"][e.op].insert({"WSAEINVAL", "WSANOTINITIALISED", "WSA_NOT_ENOUGH_MEMORY"});
        }
    }
    t["nsp"]["request"] = {"WSAEINVAL", "WSANOTINITIALISED"};
    t["nsp"]["unknown"] = {"WSAEOPNOTSUPP"};
    return t;
}

} // namespace

const request_status_table& counted_status_table() {
    static const request_status_table table = build();
    return table;
}

} // namespace vcplane
