#pragma once
// The control protocol's vocabulary on the daemon's side (README "Control socket"): reading a
// request's arguments, and the replies of each family. A request the server cannot even start
// is a bad_request (WSAEINVAL with the reason); an unknown operation is unknown_operation
// (WSAEOPNOTSUPP); a VC or party handle the session does not hold is stale_handle
// (INVALID_HANDLE, answered without reaching a call manager).

#include <cstdint>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "contracts/callmgmt/call_management.hh"
#include "contracts/cm/connection_manager.hh"
#include "contracts/nsp/name_space.hh"

namespace vcplane::protocol {

using nlohmann::json;

struct bad_request : std::runtime_error {
    using std::runtime_error::runtime_error;
};
struct unknown_operation : std::runtime_error {
    using std::runtime_error::runtime_error;
};
struct stale_handle : std::runtime_error {
    using std::runtime_error::runtime_error;
};

inline constexpr int wsa_not_initialised = 10093; // WSANOTINITIALISED: a request before hello

json status_reply(const char* family, const char* name, int64_t code, const std::string& msg);
json wsa_reply(nsp::wsa e, const std::string& msg = "");
json ndis_reply(callmgmt::status s, const std::string& msg = "");
json cm_reply(cm::result r, const std::string& msg = "");
// A reply to a request whose id could not be read ("id": null).
json unaddressed(json r);

// Arguments. Each throws bad_request naming the key when it is missing (and required) or of
// the wrong type.
std::string str(const json& req, const char* key, bool required = true);
uint64_t num(const json& req, const char* key, bool required = true, uint64_t fallback = 0);
bool flag(const json& req, const char* key, bool fallback);
uint32_t key_of(const json& j);               // "key", "label" or "vid"; none: port_key
party_spec party_of(const json& req);         // "party": {name, connection, label, next_hop}
call_encapsulation encap_of(const json& req); // "payload", "control_word", "ttl"
traffic_contract flow_of(const json& req);    // sustained_rate, peak_rate, burst, fair
std::vector<uint8_t> close_data_of(const json& req);
std::vector<std::string> strings_of(const json& req, const char* key); // optional array

} // namespace vcplane::protocol
