// libFuzzer target: the control protocol, through the real control socket of a real control
// plane. EAL runs once (net_null ports, no hugepages); each input is one client session: a
// sequence of messages, most of them requests built from the fuzzer's choices (an operation,
// handles seen in earlier replies or made up, names, keys, parties, contracts, close data),
// some raw bytes. After every message the control thread runs until nothing is left to do,
// grace periods ending at once (a manual grace-period source: no worker runs, so none can
// still be reading).
//
// Invariants, each a crash when broken (ASan and UBSan add theirs):
//   - every request that carries an id gets exactly one reply with that id, once the control
//     thread has nothing left to do; only a lookup_next may wait (for a change, or for its
//     lookup_end or the session's end), and it too is answered at most once;
//   - no reply says PENDING: a pending operation is answered when it completes;
//   - when the session ends (the client closes its socket, as a killed client does), everything
//     it made is gone: the switch holds the calls, parties, VCs, party arrays, lookups and
//     services it held before, and no deferred work is left.

#include <fuzzer/FuzzedDataProvider.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <vector>

#include <rte_eal.h>
#include <rte_mbuf.h>

#include "config/config.hh"
#include "control/control_plane.hh"
#include "dataplane/tables.hh"
#include "tests/dpdk/control_world.hh"

namespace {

using namespace vcplane;
using nlohmann::json;

[[noreturn]] void broken(const char* rule, const std::string& detail) {
    std::fprintf(stderr, "control_fuzz: broken invariant: %s (%s)\n", rule, detail.c_str());
    std::abort();
}

const std::string socket_path = "/tmp/vcplane-control-fuzz-" + std::to_string(getpid()) + ".sock";

std::string config_text() {
    return R"([eal]
lcores = [0, 1]
[connections.in]
device = "net_null0"
[connections.out1]
device = "net_null1"
bandwidth_bps = 10_000_000
[connections.vin]
device = "net_null2"
media = "vlan"
[connections.vout]
device = "net_null3"
media = "vlan"
[connections.host]
device = "net_null4"
media = "port"
[control]
socket = ")" +
           socket_path +
           R"("
max_queued_replies = 4096
[calls.feed]
connection = "in"
label = 1000
[[calls.feed.parties]]
connection = "out1"
label = 2000
next_hop = "02:00:00:00:00:02"
[services.feed]
addresses = ["192.0.2.1:7000"]
)";
}

// The switch's control thread with grace periods ended by hand. Never destroyed: libFuzzer
// ends the process, and every input has already been held to leaving nothing behind.
vcplane::test::control_world* world = nullptr;

struct census {
    size_t calls, parties, sessions, lookups, services, party_sets, chunks, vcs;
    bool operator==(const census&) const = default;
    std::string text() const {
        return "calls " + std::to_string(calls) + " parties " + std::to_string(parties) +
               " sessions " + std::to_string(sessions) + " lookups " + std::to_string(lookups) +
               " services " + std::to_string(services) + " party sets " +
               std::to_string(party_sets) + " chunks " + std::to_string(chunks) + " vcs " +
               std::to_string(vcs);
    }
};

census count_all() {
    const auto snap = world->plane->snapshot(false);
    return {snap->calls,
            snap->parties,
            world->server->sessions(),
            world->plane->names().lookups(),
            world->plane->names().services(),
            party_set::live(),
            party_set::chunks_live(),
            switch_state::live_vcs()};
}

// One client connection, read without blocking.
struct client {
    int fd = -1;
    bool open = true;
    client() {
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", socket_path.c_str());
        if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
            broken("the control socket accepts a client", std::strerror(errno));
        }
    }
    ~client() { close(fd); }
    bool send_message(const std::string& m) {
        return open && send(fd, m.data(), m.size(), MSG_NOSIGNAL) == ssize_t(m.size());
    }
    // Every message waiting; open becomes false at EOF.
    std::vector<std::string> receive_all() {
        std::vector<std::string> out;
        static std::vector<char> buf(1 << 20); // one for the process, not zeroed per read
        for (;;) {
            const ssize_t n = recv(fd, buf.data(), buf.size(), 0);
            if (n > 0) {
                out.emplace_back(buf.data(), size_t(n));
                continue;
            }
            if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
                open = false;
            }
            return out;
        }
    }
};

const char* const operations[] = {
    "hello",      "goodbye",         "status",      "connections",       "calls",
    "create_vc",  "delete_vc",       "make_call",   "add_party",         "drop_party",
    "close_call", "modify_call_qos", "set_service", "lookup_begin",      "lookup_next",
    "lookup_end", "reload",          "stats",       "no_such_operation",
};
const char* const connections[] = {"in", "out1", "vin", "vout", "host", "nope"};

// What the session has seen, to aim later requests at real handles.
struct seen {
    std::vector<uint64_t> vcs, parties, lookups;
    void note(const json& reply) {
        for (const char* k : {"vc", "party", "lookup"}) {
            auto it = reply.find(k);
            if (it != reply.end() && it->is_number_unsigned()) {
                (k[0] == 'v'   ? vcs
                 : k[0] == 'p' ? parties
                               : lookups)
                    .push_back(it->get<uint64_t>());
            }
        }
    }
};

uint64_t handle(FuzzedDataProvider& in, const std::vector<uint64_t>& known) {
    if (!known.empty() && in.ConsumeBool()) {
        return known[in.ConsumeIntegralInRange<size_t>(0, known.size() - 1)];
    }
    return in.ConsumeIntegralInRange<uint64_t>(0, 1u << 20);
}

json party_of(FuzzedDataProvider& in) {
    json p{{"name", "p" + std::to_string(in.ConsumeIntegralInRange(0, 40))},
           {"connection", connections[in.ConsumeIntegralInRange(0, 5)]}};
    if (in.ConsumeIntegralInRange(0, 7) != 0) { // none: a pseudowire's decapsulated copies
        p["next_hop"] = in.ConsumeBool() ? "02:00:00:00:00:0a" : in.ConsumeRandomLengthString(20);
    }
    switch (in.ConsumeIntegralInRange(0, 3)) {
    case 0: break;                 // no key: a port connection's party
    case 1: p["label"] = 3; break; // implicit null: pop
    default:
        p[in.ConsumeBool() ? "label" : "vid"] = in.ConsumeIntegralInRange<int64_t>(-1, 1 << 21);
    }
    return p;
}

void add_contract(FuzzedDataProvider& in, json& r) {
    if (in.ConsumeBool()) {
        r["sustained_rate"] = in.ConsumeIntegralInRange<uint64_t>(0, 1u << 24);
        r["peak_rate"] = in.ConsumeIntegralInRange<uint64_t>(0, 1u << 24);
        r["burst"] = in.ConsumeIntegralInRange<uint64_t>(0, 1u << 20);
    }
    if (in.ConsumeBool()) {
        r["fair"] = in.ConsumeBool();
    }
}

json request_of(FuzzedDataProvider& in, const seen& s, uint64_t id) {
    const std::string op =
        operations[in.ConsumeIntegralInRange<size_t>(0, std::size(operations) - 1)];
    json r{{"id", id}, {"op", op}};
    if (op == "delete_vc" || op == "close_call" || op == "modify_call_qos" || op == "add_party") {
        r["vc"] = handle(in, s.vcs);
    }
    if (op == "create_vc" || op == "make_call") {
        r["connection"] = connections[in.ConsumeIntegralInRange(0, 5)];
    }
    if (op == "make_call") {
        r["name"] = "c" + std::to_string(in.ConsumeIntegralInRange(0, 8));
        if (in.ConsumeIntegralInRange(0, 5) != 0) { // none: a port connection's call
            r[in.ConsumeBool() ? "label" : "vid"] = in.ConsumeIntegralInRange<int64_t>(0, 1 << 21);
        }
        if (in.ConsumeBool()) { // the encapsulation, valid and not
            const char* payloads[] = {"ip", "ethernet", "atm"};
            const char* models[] = {"uniform", "pipe", "short"};
            r["payload"] = payloads[in.ConsumeIntegralInRange(0, 2)];
            r["control_word"] = in.ConsumeBool();
            r["ttl"] = models[in.ConsumeIntegralInRange(0, 2)];
        }
        r["multipoint"] = in.ConsumeBool();
        r["party"] = party_of(in);
        if (in.ConsumeBool()) {
            r["vc"] = handle(in, s.vcs);
        }
        add_contract(in, r);
    }
    if (op == "add_party") {
        r["party"] = party_of(in);
    }
    if (op == "modify_call_qos") {
        add_contract(in, r);
    }
    if (op == "drop_party" || (op == "close_call" && in.ConsumeBool())) {
        r["party"] = handle(in, s.parties);
    }
    if ((op == "drop_party" || op == "close_call") && in.ConsumeBool()) {
        r["close_data"] = in.ConsumeRandomLengthString(40);
    }
    if (op == "set_service") {
        static const char* const ops[] = {"register", "deregister", "delete", "bogus"};
        r["operation"] = ops[in.ConsumeIntegralInRange(0, 3)];
        r["name"] = in.ConsumeBool() ? "svc" + std::to_string(in.ConsumeIntegralInRange(0, 4))
                                     : std::string("feed");
        r["addresses"] =
            json::array({"192.0.2.9:" + std::to_string(in.ConsumeIntegral<uint16_t>())});
        r["multiple"] = in.ConsumeBool();
    }
    if (op == "lookup_begin") {
        r["query"] =
            in.ConsumeBool() ? "*" : "svc" + std::to_string(in.ConsumeIntegralInRange(0, 4));
    }
    if (op == "lookup_next" || op == "lookup_end") {
        r["lookup"] = handle(in, s.lookups);
    }
    if (op == "lookup_next") {
        r["buffer"] = in.ConsumeIntegralInRange<uint64_t>(0, 4096);
        r["flush_previous"] = in.ConsumeBool();
    }
    if (op == "reload") {
        r["dry_run"] = in.ConsumeBool();
    }
    return r;
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    static std::string prefix = "--file-prefix=vcplane-control-fuzz-" + std::to_string(getpid());
    static const char* eal[] = {"control_fuzz",
                                "--no-huge",
                                "-m",
                                "256",
                                "--no-pci",
                                "--no-shconf",
                                "-l",
                                "0-1",
                                "--log-level=error",
                                "--vdev=net_null0",
                                "--vdev=net_null1",
                                "--vdev=net_null2",
                                "--vdev=net_null3",
                                "--vdev=net_null4",
                                prefix.c_str()};
    if (rte_eal_init(int(std::size(eal)), const_cast<char**>(eal)) < 0) {
        std::fprintf(stderr, "control_fuzz: EAL did not start (root is needed)\n");
        std::abort();
    }
    unlink(socket_path.c_str());
    world = new vcplane::test::control_world(config_text(), "control_fuzz");
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const census before = count_all();
    FuzzedDataProvider in(data, size);
    seen s;
    {
        client c;
        world->settle();                       // accepted
        std::map<uint64_t, unsigned> replies;  // id -> replies to it
        std::map<uint64_t, std::string> asked; // id -> its operation, while unanswered
        uint64_t next_id = uint64_t(1) << 40;  // raw messages may carry any smaller id
        if (in.ConsumeBool()) {
            c.send_message(json{{"id", next_id}, {"op", "hello"}}.dump());
            asked[next_id++] = "hello";
        }
        while (in.remaining_bytes() > 0 && c.open) {
            std::string message;
            if (in.ConsumeIntegralInRange(0, 9) == 0) {
                message = in.ConsumeRandomLengthString(256);
            } else {
                const json r = request_of(in, s, next_id);
                asked[next_id++] = r["op"].get<std::string>();
                // Fuzzed strings need not be UTF-8: replaced here (raw messages send any bytes).
                message = r.dump(-1, ' ', false, json::error_handler_t::replace);
            }
            if (!c.send_message(message)) {
                break; // the session ended (its last goodbye)
            }
            world->settle();
            for (const std::string& m : c.receive_all()) {
                const json reply = json::parse(m, nullptr, false);
                if (reply.is_discarded() || !reply.is_object()) {
                    broken("every reply is a JSON object", m);
                }
                if (reply.contains("event")) {
                    continue;
                }
                if (reply.value("status", "") == "PENDING") {
                    broken("no reply says PENDING", m);
                }
                s.note(reply);
                auto id = reply.find("id");
                if (id == reply.end() || !id->is_number_unsigned() ||
                    id->get<uint64_t>() < (uint64_t(1) << 40)) {
                    continue; // unaddressed, or a raw message's own id
                }
                if (++replies[id->get<uint64_t>()] > 1) {
                    broken("one reply per request", m);
                }
                asked.erase(id->get<uint64_t>());
            }
            for (const auto& [id, op] : asked) {
                if (op != "lookup_next" && c.open) {
                    broken("every request is answered once the control thread is idle",
                           op + " " + std::to_string(id));
                }
            }
        }
    } // the client closes its socket: rundown
    world->settle();
    const census after = count_all();
    if (!(after == before)) {
        broken("a session leaves nothing behind",
               "before: " + before.text() + "; after: " + after.text());
    }
    return 0;
}
