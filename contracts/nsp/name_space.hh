#pragma once
// Threading: control thread only; no call blocks. A NextEx's result is delivered by a
// function posted to the control loop, never from inside the request.
//
// The namespace of NSPv2 (docs/contracts.md §3): names of connections, calls and parties
// (supplied by the switch at lookup time) and services that client sessions register.
//
//   set_service   SetServiceEx: REGISTER / DEREGISTER / DELETE, with or without SERVICE_MULTIPLE,
//                 exactly as the table of contracts.md §3.4.
//   lookup_begin  LookupServiceBegin: quick, creates a cursor; the query is a name with '*'
//                 wildcards, optionally restricted to one kind.
//   lookup_next   LookupServiceNextEx: one result per call; WSAEFAULT with the size needed when
//                 the client's buffer is too small (the result stays for the retry, unless
//                 LUP_FLUSHPREVIOUS on the next call, which skips only a result that did not
//                 fit); WSA_E_NO_MORE at the end. A handle that was ended is
//                 WSA_INVALID_HANDLE. A NextEx is answered on the next
//                 loop iteration; a lookup_end arriving before that cancels it (WSA_E_CANCELLED).
//   lookup_end    LookupServiceEnd.
//
// Statuses: set_service NO_ERROR | WSAEINVAL (bad name or flags, a string that is not UTF-8,
// DELETE|MULTIPLE of an address not registered) | WSAEACCES (another session's service) |
// WSA_NOT_ENOUGH_MEMORY (quotas, out of memory) | WSASERVICE_NOT_FOUND; lookup_begin NO_ERROR |
// WSAEINVAL | WSA_NOT_ENOUGH_MEMORY (quota, out of memory); lookup_next NO_ERROR (started) |
// WSA_INVALID_HANDLE | WSAEINVAL (one in flight already); its completion NO_ERROR | WSAEFAULT |
// WSA_E_NO_MORE | WSASERVICE_NOT_FOUND (nothing matches) | WSA_E_CANCELLED; lookup_end NO_ERROR |
// WSA_INVALID_HANDLE.
//
// Results are JSON objects; their "size" is the length of their serialised text. Every session
// has quotas (lookups, services); beyond them: WSA_NOT_ENOUGH_MEMORY. Control thread only.

#include "vocab/enum_names.hh"
#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace vcplane::nsp {

// Winsock error codes (contracts.md §0.1).
enum class wsa : int {
    no_error = 0,
    invalid_handle = 6,        // WSA_INVALID_HANDLE
    not_enough_memory = 8,     // WSA_NOT_ENOUGH_MEMORY
    access_denied = 10013,     // WSAEACCES
    fault = 10014,             // WSAEFAULT
    invalid = 10022,           // WSAEINVAL
    not_supported = 10045,     // WSAEOPNOTSUPP
    no_more = 10110,           // WSA_E_NO_MORE
    cancelled = 10111,         // WSA_E_CANCELLED
    service_not_found = 10108, // WSASERVICE_NOT_FOUND
    no_data = 11004,           // WSANO_DATA
};
const char* wsa_name(wsa e);

enum class set_op { register_service = 0, deregister = 1, remove = 2 }; // RNRSERVICE_*
inline constexpr uint32_t service_multiple = 0x1;
inline constexpr uint32_t lup_flushprevious = 0x2000;

// What each operation can return (the table above, as data; name_space_test checks that every
// status listed is produced and nothing else). complete_next is the NextEx's completion.
struct operation_statuses {
    const char* operation;
    std::vector<wsa> statuses;
};
inline const std::vector<operation_statuses>& operation_status_table() {
    using enum wsa;
    static const std::vector<operation_statuses> table = {
        {"set_service", {no_error, invalid, access_denied, not_enough_memory, service_not_found}},
        {"lookup_begin", {no_error, invalid, not_enough_memory}},
        {"lookup_next", {no_error, invalid_handle, invalid}},
        {"complete_next", {no_error, cancelled, service_not_found, no_more, fault}},
        {"lookup_end", {no_error, invalid_handle}},
    };
    return table;
}

using session_id = uint64_t;
using lookup_handle = uint64_t;

struct quotas {
    size_t lookups_per_session = 64;
    size_t services_per_session = 256;
    size_t addresses_per_service = 64;
};

class name_space {
public:
    // names: the switch's own names at lookup time, as result objects with "name" and "kind".
    explicit name_space(std::function<std::vector<nlohmann::json>()> names, quotas q = {});

    wsa set_service(session_id s, set_op op, uint32_t flags, const std::string& name,
                    const std::vector<std::string>& addresses, const std::string& comment);

    wsa lookup_begin(session_id s, const std::string& query, const std::string& kind,
                     lookup_handle* out);
    // Starts a NextEx: the answer is produced by complete_next() (the caller runs it on the next
    // loop iteration). Returns no_error when started, or the error at once (bad handle, one in
    // flight already).
    wsa lookup_next(session_id s, lookup_handle h, size_t buffer, uint32_t flags);
    struct next_result {
        wsa status;
        nlohmann::json result; // on no_error
        size_t needed = 0;     // on fault
    };
    // Completes the NextEx in flight on h (cancelled if lookup_end came first).
    std::optional<next_result> complete_next(session_id s, lookup_handle h);
    wsa lookup_end(session_id s, lookup_handle h);

    // Rundown / Cleanup: ends every lookup of the session (a NextEx in flight completes
    // cancelled) and deletes the services it registered. Idempotent.
    void end_session(session_id s);

    size_t lookups() const;
    size_t lookups_of(session_id s) const;
    size_t services() const { return services_.size(); }

private:
    struct service {
        std::vector<std::string> addresses;
        std::string comment;
        session_id owner;
        bool registered;
    };
    struct cursor {
        session_id owner;
        std::string query;
        std::string kind;
        std::optional<std::vector<nlohmann::json>> results; // computed at the first NextEx
        size_t next = 0;
        bool in_flight = false;
        size_t in_flight_buffer = 0;
        uint32_t in_flight_flags = 0;
        bool cancelled = false; // End came while a NextEx was in flight
        bool faulted = false;   // the last NextEx was WSAEFAULT: LUP_FLUSHPREVIOUS skips it
    };
    std::vector<nlohmann::json> matching(const cursor& c) const;
    wsa register_service(session_id s, const std::string& name, bool multiple,
                         const std::vector<std::string>& addresses, const std::string& comment);
    size_t services_of(session_id s) const;

    std::function<std::vector<nlohmann::json>()> names_;
    quotas quotas_;
    std::map<std::string, service> services_;
    std::map<lookup_handle, cursor> cursors_;
    lookup_handle next_handle_ = 1;
};

// '*' matches any run of characters, everything else itself.
bool wildcard_match(const std::string& pattern, const std::string& text);

} // namespace vcplane::nsp

// Their names (vocab/enum_names.hh).
namespace vcplane {

template <>
struct enum_names<nsp::wsa> {
    static constexpr named<nsp::wsa> list[] = {
        {nsp::wsa::no_error, "NO_ERROR"},
        {nsp::wsa::invalid_handle, "WSA_INVALID_HANDLE"},
        {nsp::wsa::not_enough_memory, "WSA_NOT_ENOUGH_MEMORY"},
        {nsp::wsa::access_denied, "WSAEACCES"},
        {nsp::wsa::fault, "WSAEFAULT"},
        {nsp::wsa::invalid, "WSAEINVAL"},
        {nsp::wsa::not_supported, "WSAEOPNOTSUPP"},
        {nsp::wsa::no_more, "WSA_E_NO_MORE"},
        {nsp::wsa::cancelled, "WSA_E_CANCELLED"},
        {nsp::wsa::service_not_found, "WSASERVICE_NOT_FOUND"},
        {nsp::wsa::no_data, "WSANO_DATA"}};
};

} // namespace vcplane
