#pragma once
// The control protocol's vocabulary on the daemon's side (README "Control socket"): reading a
// request's arguments, and the replies of each family. A request the server cannot even start
// is a bad_request (WSAEINVAL with the reason); an unknown operation is unknown_operation
// (WSAEOPNOTSUPP); a VC or party handle the session does not hold is stale_handle
// (INVALID_HANDLE, answered without reaching a call manager); a handle the session holds whose
// call manager detached is binding_gone (NOINTERFACE: docs/contracts.md §4, a request through
// a binding that is gone).

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
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
struct binding_gone : std::runtime_error {
    using std::runtime_error::runtime_error;
};

inline constexpr int wsa_not_initialised = 10093; // WSANOTINITIALISED: a request before hello

// A reply: the status every reply carries (family, status, code, message) and the members
// its operation adds. Its text is written directly, keys sorted as nlohmann::json writes an
// object, so that the common reply (a status and a handle or two) builds no JSON tree; a
// member's value is a JSON value, and a number costs nothing more. Move-only.
class reply {
public:
    // family and status: names from the contracts' static tables (identifiers, written as
    // they are).
    reply(const char* family, const char* status, int64_t code, std::string message = {});
    // An object that holds family, status, code and message (a reload's report): its other
    // keys are the members. Throws std::invalid_argument when one of the four is missing.
    explicit reply(const json& object);
    reply(reply&&) noexcept = default;
    reply& operator=(reply&&) noexcept = default;

    // The member `key`, null until assigned; the reference lasts until another member is
    // added. "id", "family", "status", "code" and "message" are not members (std::logic_error).
    json& operator[](std::string_view key);
    const json* find(std::string_view key) const;

    std::string_view family() const { return family_; }
    std::string_view status() const { return status_; }
    const std::string& message() const { return message_; }
    void set_message(std::string m) { message_ = std::move(m); }

    // The reply as one JSON object with "id": id (null: a reply to a request whose id could
    // not be read, or a refused connection's).
    std::string text(std::optional<uint64_t> id) const;
    // The reply cut to what says its outcome, appended to out: id, family, status, code, a
    // message saying it was cut, and its members that are numbers or booleans (the handles);
    // "truncated": true when it had others. Allocates nothing while out has the room.
    void write_short(uint64_t id, std::string& out) const;

private:
    struct names {
        std::string family, status;
    };
    std::string_view family_, status_;
    std::unique_ptr<names> owned_; // where family_ and status_ point when read from an object
    int64_t code_ = 0;
    std::string message_;
    std::vector<std::pair<std::string, json>> members_; // sorted by key

    // Where key is, or would go, in members.
    template <typename Members>
    static auto place_of(Members& members, std::string_view key);
};

reply status_reply(const char* family, const char* name, int64_t code, std::string msg);
reply wsa_reply(nsp::wsa e, std::string msg = {});
reply ndis_reply(callmgmt::status s, std::string msg = {});
reply cm_reply(cm::result r, std::string msg = {});

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
