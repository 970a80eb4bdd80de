// libFuzzer target: the NSPv2 namespace driven by a fuzzed sequence of SetServiceEx, Begin,
// NextEx (with fuzzed buffer sizes and flags), its completion, End and session ends, for three
// sessions, against the switch's own names.
//
// Invariants, each a crash when broken (ASan and UBSan add theirs):
//   - every status is one the operation's table lists (nsp::operation_status_table());
//   - WSAEFAULT's `needed` is always enough: a NextEx with that buffer returns the result;
//   - a result that fits is no larger than the buffer it was asked with;
//   - when every session has ended, no lookup and no service is left.

#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "contracts/nsp/name_space.hh"

namespace {

using namespace vcplane::nsp;
using nlohmann::json;

[[noreturn]] void broken(const char* rule, const std::string& detail) {
    std::fprintf(stderr, "namespace_fuzz: broken invariant: %s (%s)\n", rule, detail.c_str());
    std::abort();
}

wsa listed(const char* operation, wsa status) {
    for (const auto& op : operation_status_table()) {
        if (std::string(op.operation) == operation) {
            if (std::find(op.statuses.begin(), op.statuses.end(), status) != op.statuses.end()) {
                return status;
            }
            broken("every status is listed for its operation",
                   std::string(operation) + " returned " + wsa_name(status));
        }
    }
    broken("every operation has a table entry", operation);
}

std::vector<json> switch_names() {
    return {json{{"name", "uplink0"}, {"kind", "connection"}},
            json{{"name", "feed-a"}, {"kind", "call"}},
            json{{"name", "feed-a/leaf0"}, {"kind", "party"}},
            json{{"name", "feed-b"}, {"kind", "call"}}};
}

struct driver {
    explicit driver(FuzzedDataProvider& data)
        : in(data) {}

    FuzzedDataProvider& in;
    name_space ns{switch_names, quotas{4, 8, 4}};
    std::vector<lookup_handle> handles; // every handle ever returned, live or not

    session_id session() { return in.ConsumeIntegralInRange<session_id>(1, 3); }
    std::string word(size_t max) { return in.ConsumeRandomLengthString(max); }
    lookup_handle handle() {
        if (handles.empty() || in.ConsumeBool()) {
            return in.ConsumeIntegral<lookup_handle>();
        }
        return handles[in.ConsumeIntegralInRange<size_t>(0, handles.size() - 1)];
    }

    void set_service() {
        const session_id s = session();
        const auto op = set_op(in.ConsumeIntegralInRange<int>(0, 2));
        const uint32_t flags = in.ConsumeBool() ? service_multiple : in.ConsumeIntegral<uint32_t>();
        const std::string name = word(24);
        std::vector<std::string> addresses(in.ConsumeIntegralInRange<size_t>(0, 5));
        for (auto& a : addresses) {
            a = word(24);
        }
        listed("set_service", ns.set_service(s, op, flags, name, addresses, word(16)));
    }

    void begin() {
        static const char* kinds[] = {"", "service", "call", "connection", "party"};
        const session_id s = session();
        const std::string query = word(16);
        const std::string kind =
            in.ConsumeBool() ? kinds[in.ConsumeIntegralInRange(0, 4)] : word(8);
        lookup_handle h = 0;
        if (listed("lookup_begin", ns.lookup_begin(s, query, kind, &h)) == wsa::no_error) {
            handles.push_back(h);
        }
    }

    void next() {
        const session_id s = session();
        const lookup_handle h = handle();
        const size_t buffer = in.ConsumeIntegralInRange<size_t>(0, 512);
        const uint32_t flags = in.ConsumeBool() ? lup_flushprevious : 0;
        if (listed("lookup_next", ns.lookup_next(s, h, buffer, flags)) != wsa::no_error) {
            return;
        }
        if (in.ConsumeBool()) {
            listed("lookup_end", ns.lookup_end(s, h)); // End races the NextEx
        }
        const auto r = ns.complete_next(s, h);
        if (!r) {
            broken("a started NextEx completes", std::to_string(h));
        }
        listed("complete_next", r->status);
        if (r->status == wsa::no_error && r->result.dump().size() > buffer) {
            broken("a result that fits is no larger than the buffer", r->result.dump());
        }
        if (r->status != wsa::fault) {
            return;
        }
        if (r->needed <= buffer) {
            broken("WSAEFAULT needs more than the buffer it was asked with",
                   std::to_string(r->needed));
        }
        // The retry with what it said it needs gets the result.
        listed("lookup_next", ns.lookup_next(s, h, r->needed, 0));
        const auto again = ns.complete_next(s, h);
        if (!again || again->status != wsa::no_error) {
            broken("WSAEFAULT's needed is enough", again ? wsa_name(again->status) : "nothing");
        }
    }

    void run() {
        while (in.remaining_bytes() > 0) {
            switch (in.ConsumeIntegralInRange(0, 4)) {
            case 0: set_service(); break;
            case 1: begin(); break;
            case 2: next(); break;
            case 3: listed("lookup_end", ns.lookup_end(session(), handle())); break;
            case 4: ns.end_session(session()); break;
            }
        }
        for (session_id s = 1; s <= 3; ++s) {
            ns.end_session(s);
        }
        if (ns.lookups() != 0 || ns.services() != 0) {
            broken("nothing is left when every session has ended",
                   std::to_string(ns.lookups()) + " lookups, " + std::to_string(ns.services()) +
                       " services");
        }
    }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    FuzzedDataProvider in(data, size);
    driver(in).run();
    return 0;
}
