#pragma once
// The control protocol's operations: each family registers its handlers in a table, and the
// session dispatches a request by its "op" (README "Control socket").
//
//   nsp     hello, goodbye, set_service, lookup_begin, lookup_next, lookup_end
//   ndis    create_vc, delete_vc, make_call, add_party, drop_party, close_call, modify_call_qos
//   cm      port_attach, port_detach, disconnect
//   switch  status, connections, calls, stats, reload
//
// A handler returns the reply, or nullopt when the request pends (the session answers it
// from the completion). It throws protocol::bad_request (and the other protocol errors) for
// requests it cannot start. Outcomes are counted by the engine that produced them: a handler
// whose status was counted there says so (counted_by_engine), and the session counts the rest.

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/protocol.hh"

namespace vcplane {

class session;
class session_host;

struct request {
    session& s;
    session_host& srv;
    uint64_t id;
    const nlohmann::json& args;
    bool counted_by_engine = false; // its status is already in vcplane_contract_operations_total
};

using request_handler = std::optional<protocol::reply> (*)(request& r);

struct handler_entry {
    const char* op;
    request_handler handle;
    // A view changes nothing: when its reply cannot be made, WSA_NOT_ENOUGH_MEMORY is the
    // truth. Any other request's outcome is reported even then (session::reply).
    bool view = false;
};

// Each family's table (daemon/handlers_<family>.cc).
const std::vector<handler_entry>& nsp_handlers();
const std::vector<handler_entry>& ndis_handlers();
const std::vector<handler_entry>& cm_handlers();
const std::vector<handler_entry>& switch_handlers();

// Every operation, by name; nullptr for an unknown one.
const handler_entry* find_handler(std::string_view op);

} // namespace vcplane
