#include "contracts/nsp/name_space.hh"

#include "vocab/names.hh"

#include <algorithm>
#include <cstdint>
#include <string_view>

#include "base/alloc_faults.hh"

namespace vcplane::nsp {

const char* wsa_name(wsa e) {
    return name_of(e);
}

bool wildcard_match(const std::string& p, const std::string& t) {
    // Iterative glob with backtracking to the last '*'.
    size_t pi = 0, ti = 0, star = std::string::npos, mark = 0;
    while (ti < t.size()) {
        if (pi < p.size() && p[pi] == '*') {
            star = pi++;
            mark = ti;
        } else if (pi < p.size() && p[pi] == t[ti]) {
            ++pi;
            ++ti;
        } else if (star != std::string::npos) {
            pi = star + 1;
            ti = ++mark;
        } else {
            return false;
        }
    }
    while (pi < p.size() && p[pi] == '*') {
        ++pi;
    }
    return pi == p.size();
}

name_space::name_space(std::function<std::vector<nlohmann::json>()> names, quotas q)
    : names_(std::move(names))
    , quotas_(q) {}

size_t name_space::services_of(session_id s) const {
    return size_t(std::count_if(services_.begin(), services_.end(),
                                [s](const auto& e) { return e.second.owner == s; }));
}

// Well-formed UTF-8 (no overlong forms, no surrogates, nothing past U+10FFFF): results are
// JSON text, so a service's strings must be text.
static bool is_utf8(std::string_view t) {
    for (size_t i = 0; i < t.size();) {
        const auto b = uint8_t(t[i]);
        const size_t n = b < 0x80           ? 1
                         : (b >> 5) == 0x6  ? 2
                         : (b >> 4) == 0xE  ? 3
                         : (b >> 3) == 0x1E ? 4
                                            : 0;
        if (n == 0 || i + n > t.size()) {
            return false;
        }
        uint32_t cp = n == 1 ? b : b & (0xFF >> (n + 1));
        for (size_t k = 1; k < n; ++k) {
            const auto c = uint8_t(t[i + k]);
            if ((c >> 6) != 0x2) {
                return false;
            }
            cp = (cp << 6) | (c & 0x3F);
        }
        static constexpr uint32_t smallest[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < smallest[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            return false;
        }
        i += n;
    }
    return true;
}

wsa name_space::set_service(session_id s, set_op op, uint32_t flags, const std::string& name,
                            const std::vector<std::string>& addresses, const std::string& comment) {
    // The name rule (vocab/names.hh) is the file's: no '*', which would read as a wildcard.
    if (!valid_name(name) || (flags & ~service_multiple) != 0) {
        return wsa::invalid;
    }
    if (!is_utf8(comment) || !std::all_of(addresses.begin(), addresses.end(),
                                          [](const auto& a) { return is_utf8(a); })) {
        return wsa::invalid;
    }
    const bool multiple = (flags & service_multiple) != 0;
    auto it = services_.find(name);
    if (it != services_.end() && it->second.owner != s) {
        return wsa::access_denied; // another session's service
    }
    switch (op) {
    case set_op::register_service: return register_service(s, name, multiple, addresses, comment);
    case set_op::deregister: {
        if (it == services_.end()) {
            return wsa::service_not_found;
        }
        service& svc = it->second;
        if (multiple) {
            std::erase_if(svc.addresses, [&](const std::string& a) {
                return std::find(addresses.begin(), addresses.end(), a) != addresses.end();
            });
            svc.registered = !svc.addresses.empty(); // DEREGISTERED only if none is left
        } else {
            svc.addresses.clear();
            svc.registered = false;
        }
        return wsa::no_error; // the object stays either way
    }
    case set_op::remove: {
        if (it == services_.end()) {
            return wsa::service_not_found;
        }
        if (!multiple) {
            services_.erase(it);
            return wsa::no_error;
        }
        // The given addresses must match registered ones exactly.
        for (const auto& a : addresses) {
            if (std::find(it->second.addresses.begin(), it->second.addresses.end(), a) ==
                it->second.addresses.end()) {
                return wsa::invalid;
            }
        }
        std::erase_if(it->second.addresses, [&](const std::string& a) {
            return std::find(addresses.begin(), addresses.end(), a) != addresses.end();
        });
        if (it->second.addresses.empty()) {
            services_.erase(it);
        }
        return wsa::no_error;
    }
    }
    return wsa::invalid;
}

// REGISTER: a new service, or the given addresses added to (MULTIPLE, all or none) or put in
// place of (without it) those of the session's own.
wsa name_space::register_service(session_id s, const std::string& name, bool multiple,
                                 const std::vector<std::string>& addresses,
                                 const std::string& comment) {
    auto it = services_.find(name);
    if (addresses.size() > quotas_.addresses_per_service) {
        return wsa::not_enough_memory;
    }
    if (it == services_.end() && services_of(s) >= quotas_.services_per_session) {
        return wsa::not_enough_memory;
    }
    // Out of memory is the quota's status too. Everything is built before anything is
    // changed, so a failed allocation leaves the service as it was.
    try {
        alloc_faults::throw_if_failing(alloc_faults::site::service);
        if (it == services_.end()) {
            services_.emplace(name, service{addresses, comment, s, true});
            return wsa::no_error;
        }
        service& svc = it->second;
        std::vector<std::string> next = multiple ? svc.addresses : addresses;
        if (multiple) { // add the given addresses: all of them, or none
            for (const auto& a : addresses) {
                if (std::find(next.begin(), next.end(), a) == next.end()) {
                    next.push_back(a);
                }
            }
            if (next.size() > quotas_.addresses_per_service) {
                return wsa::not_enough_memory;
            }
        }
        std::string next_comment = comment.empty() ? svc.comment : comment;
        svc.addresses = std::move(next); // no allocation from here on
        svc.comment = std::move(next_comment);
        svc.registered = true;
        return wsa::no_error;
    } catch (const std::bad_alloc&) {
        return wsa::not_enough_memory;
    }
}

wsa name_space::lookup_begin(session_id s, const std::string& query, const std::string& kind,
                             lookup_handle* out) {
    static const std::set<std::string> kinds = {"", "connection", "call", "party", "service"};
    if (query.empty() || kinds.count(kind) == 0 || out == nullptr) {
        return wsa::invalid;
    }
    if (lookups_of(s) >= quotas_.lookups_per_session) {
        return wsa::not_enough_memory;
    }
    // Begin only makes the cursor (it cannot be cancelled, so it must be quick). Out of memory
    // is the quota's status too; a failed allocation makes no cursor and uses no handle.
    try {
        alloc_faults::throw_if_failing(alloc_faults::site::lookup);
        cursors_.emplace(next_handle_,
                         cursor{s, query, kind, std::nullopt, 0, false, 0, 0, false, false});
    } catch (const std::bad_alloc&) {
        return wsa::not_enough_memory;
    }
    *out = next_handle_++;
    return wsa::no_error;
}

std::vector<nlohmann::json> name_space::matching(const cursor& c) const {
    std::vector<nlohmann::json> out;
    if (c.kind.empty() || c.kind != "service") {
        for (auto& n : names_()) {
            if ((c.kind.empty() || n.value("kind", "") == c.kind) &&
                wildcard_match(c.query, n.value("name", ""))) {
                out.push_back(std::move(n));
            }
        }
    }
    if (c.kind.empty() || c.kind == "service") {
        for (const auto& [name, svc] : services_) {
            if (wildcard_match(c.query, name)) {
                out.push_back({{"name", name},
                               {"kind", "service"},
                               {"registered", svc.registered},
                               {"addresses", svc.addresses},
                               {"comment", svc.comment}});
            }
        }
    }
    return out;
}

wsa name_space::lookup_next(session_id s, lookup_handle h, size_t buffer, uint32_t flags) {
    auto it = cursors_.find(h);
    if (it == cursors_.end() || it->second.owner != s || it->second.cancelled) {
        return wsa::invalid_handle; // never was, or ended (a NextEx in flight is cancelled)
    }
    if (it->second.in_flight) {
        return wsa::invalid; // one NextEx at a time per lookup
    }
    it->second.in_flight = true;
    it->second.in_flight_buffer = buffer;
    it->second.in_flight_flags = flags;
    return wsa::no_error;
}

std::optional<name_space::next_result> name_space::complete_next(session_id s, lookup_handle h) {
    auto it = cursors_.find(h);
    if (it == cursors_.end() || it->second.owner != s || !it->second.in_flight) {
        return std::nullopt;
    }
    cursor& c = it->second;
    c.in_flight = false;
    if (c.cancelled) {
        // lookup_end came while this NextEx was in flight: the handle is gone now.
        cursors_.erase(it);
        return next_result{wsa::cancelled, {}, 0};
    }
    if (!c.results) {
        c.results = matching(c);
        if (c.results->empty()) {
            return next_result{wsa::service_not_found, {}, 0};
        }
    }
    if ((c.in_flight_flags & lup_flushprevious) != 0 && c.faulted) {
        ++c.next; // discard the result that did not fit last time
    }
    c.faulted = false;
    if (c.next >= c.results->size()) {
        return next_result{wsa::no_more, {}, 0};
    }
    const nlohmann::json& r = (*c.results)[c.next];
    const size_t size = r.dump().size();
    if (size > c.in_flight_buffer) {
        c.faulted = true;
        return next_result{wsa::fault, {}, size}; // stays for a retry with a bigger buffer
    }
    ++c.next;
    return next_result{wsa::no_error, r, size};
}

wsa name_space::lookup_end(session_id s, lookup_handle h) {
    auto it = cursors_.find(h);
    if (it == cursors_.end() || it->second.owner != s || it->second.cancelled) {
        return wsa::invalid_handle;
    }
    if (it->second.in_flight) {
        it->second.cancelled = true; // the NextEx in flight completes cancelled, then it goes
    } else {
        cursors_.erase(it);
    }
    return wsa::no_error;
}

void name_space::end_session(session_id s) {
    for (auto it = cursors_.begin(); it != cursors_.end();) {
        if (it->second.owner == s) {
            it = cursors_.erase(it); // nobody listens for a cancelled NextEx any more
        } else {
            ++it;
        }
    }
    std::erase_if(services_, [s](const auto& e) { return e.second.owner == s; });
}

size_t name_space::lookups() const {
    return cursors_.size();
}

size_t name_space::lookups_of(session_id s) const {
    return size_t(std::count_if(cursors_.begin(), cursors_.end(), [s](const auto& e) {
        return e.second.owner == s && !e.second.cancelled;
    }));
}

} // namespace vcplane::nsp
