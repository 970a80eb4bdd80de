// Allocation failure injected at every control-plane site an operation depends on
// (base/alloc_faults.hh), through the real control socket of a real control plane (EAL with
// net_null ports, grace periods ended by hand): the operation answers its contract's resource
// status, nothing is half-made, the tables are as before, and the same operation then succeeds.

#include <cerrno>
#include <cstring>
#include <gtest/gtest.h>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <vector>

#include <rte_mbuf.h>

#include "base/alloc_faults.hh"
#include "dataplane/tables.hh"
#include "port/eal.hh"
#include "tests/dpdk/control_world.hh"

namespace vcplane {
namespace {

using alloc_faults::site;
using nlohmann::json;
using test::control_world;

const std::string socket_path = "/tmp/vcplane-alloc-faults-" + std::to_string(getpid()) + ".sock";

std::string config_text() {
    return R"([eal]
lcores = [0, 1]
[connections.in]
device = "net_null0"
[connections.out1]
device = "net_null1"
[connections.out2]
device = "net_null2"
[control]
socket = ")" +
           socket_path + R"("
)";
}

std::unique_ptr<control_world> the_world;

control_world& world() {
    std::unique_ptr<control_world>& w = the_world;
    if (!w) {
        const std::string prefix = "--file-prefix=vcplane-alloc-faults-" + std::to_string(getpid());
        eal_start({"alloc_faults_test", "--no-huge", "-m", "256", "--no-pci", "--no-shconf", "-l",
                   "0-1", "--log-level=error", "--vdev=net_null0", "--vdev=net_null1",
                   "--vdev=net_null2", prefix});
        unlink(socket_path.c_str());
        w = std::make_unique<control_world>(config_text(), "alloc_faults_test");
    }
    return *w;
}

// What must be as before: every count of live state, and the switch's own account of its calls.
struct census {
    size_t calls, parties, sessions, lookups, services, party_sets, chunks, vcs;
    std::string calls_listed;
    bool operator==(const census&) const = default;
};

class client {
public:
    // hello: whether to open the session as a client does before any other request.
    explicit client(bool hello = true) {
        fd_ = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", socket_path.c_str());
        if (fd_ < 0 || connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
            ADD_FAILURE() << "connect: " << std::strerror(errno);
        }
        world().settle();
        if (hello) {
            EXPECT_EQ(ask({{"op", "hello"}, {"name", "alloc_faults_test"}}).value("status", ""),
                      "NO_ERROR");
        }
    }
    ~client() {
        close(fd_);
        world().settle(); // the session's rundown
    }
    // Every message waiting, after the control thread has run; eof set when the peer closed.
    std::vector<json> receive() {
        world().settle();
        std::vector<json> out;
        std::vector<char> buf(1 << 20);
        for (;;) {
            const ssize_t n = recv(fd_, buf.data(), buf.size(), 0);
            if (n <= 0) {
                eof = n == 0;
                return out;
            }
            out.push_back(json::parse(std::string(buf.data(), size_t(n))));
        }
    }
    // The one reply to r (events skipped).
    json ask(json r) {
        r["id"] = ++next_id_;
        const std::string m = r.dump();
        EXPECT_EQ(send(fd_, m.data(), m.size(), MSG_NOSIGNAL), ssize_t(m.size()));
        json reply;
        int replies = 0;
        for (json& j : receive()) {
            if (j.contains("id") && j["id"] == next_id_) {
                reply = std::move(j);
                ++replies;
            }
        }
        EXPECT_EQ(replies, 1) << m;
        return reply;
    }
    bool eof = false;

private:
    int fd_ = -1;
    uint64_t next_id_ = 0;
};

census count_all(client& c) {
    control_world& w = world();
    const auto snap = w.plane->snapshot(false);
    json listed = c.ask({{"op", "calls"}});
    listed.erase("id");
    return {snap->calls,
            snap->parties,
            w.server->sessions(),
            w.plane->names().lookups(),
            w.plane->names().services(),
            party_set::live(),
            party_set::chunks_live(),
            switch_state::live_vcs(),
            listed.dump()};
}

json party(const std::string& name, const std::string& conn, uint32_t label) {
    return {
        {"name", name}, {"connection", conn}, {"label", label}, {"next_hop", "02:00:00:00:00:0a"}};
}

json make_call(uint32_t label, bool metered = false) {
    // Appended rather than "c" + std::to_string(label): GCC 12 warns (-Wrestrict) on that
    // inlined concatenation although it is correct.
    std::string name = "c";
    name += std::to_string(label);
    json r{{"op", "make_call"}, {"connection", "in"}, {"name", name},
           {"label", label},    {"multipoint", true}, {"party", party("a", "out1", 2000)}};
    if (metered) {
        r["sustained_rate"] = 125000;
    }
    return r;
}

class alloc_faults_test : public ::testing::Test {
protected:
    void SetUp() override { world(); }
    void TearDown() override {
        EXPECT_EQ(alloc_faults::pending(armed_), 0u) << "the armed site was never reached";
        alloc_faults::disarm_all();
    }
    // r refused with (family, status) while `s` fails `failures` times, the tables as before; then
    // r again succeeds (its reply returned).
    json refused_then_served(client& c, site s, const json& r, const std::string& family,
                             const std::string& status, const std::string& success,
                             unsigned failures = 1) {
        armed_ = s;
        const census before = count_all(c);
        alloc_faults::arm(s, failures);
        const json refused = c.ask(r);
        EXPECT_EQ(refused.value("family", ""), family) << refused;
        EXPECT_EQ(refused.value("status", ""), status) << refused;
        EXPECT_EQ(alloc_faults::pending(s), 0u) << "the site was not reached: " << r;
        const census after = count_all(c);
        EXPECT_TRUE(after == before)
            << "before " << before.calls_listed << "\nafter  " << after.calls_listed;
        const json served = c.ask(r);
        EXPECT_EQ(served.value("status", ""), success) << served;
        return served;
    }
    site armed_ = site::party_array;
};

TEST_F(alloc_faults_test, make_call_answers_resources_at_each_site_it_allocates_at) {
    client c;
    struct {
        site at;
        json request;
        unsigned failures;
    } const cases[] = {
        {site::party_array, make_call(3000), 1},
        {site::vc, make_call(3001), 1},
        // A key no earlier call's leaf holds. Its first failure is absorbed: the vc, finding no
        // leaf to be built in, takes a block of its own; the second is the leaf to publish in.
        {site::table_leaf, make_call(600000), 2},
        {site::meter, make_call(3002, true), 1},
    };
    for (const auto& k : cases) {
        refused_then_served(c, k.at, k.request, "ndis", "RESOURCES", "SUCCESS", k.failures);
    }
}

TEST_F(alloc_faults_test, a_change_to_a_call_answers_resources_and_leaves_the_call_as_it_was) {
    client c;
    const json made = c.ask(make_call(3100, true));
    ASSERT_EQ(made.value("status", ""), "SUCCESS") << made;
    const uint64_t vc = made["vc"];
    const json add{{"op", "add_party"}, {"vc", vc}, {"party", party("b", "out2", 2001)}};
    const json added =
        refused_then_served(c, site::party_array, add, "ndis", "RESOURCES", "SUCCESS");
    const json qos{{"op", "modify_call_qos"}, {"vc", vc}, {"sustained_rate", 250000}};
    refused_then_served(c, site::meter, qos, "ndis", "RESOURCES", "SUCCESS");
    refused_then_served(c, site::vc, qos, "ndis", "RESOURCES", "SUCCESS");
    refused_then_served(c, site::party_array, qos, "ndis", "RESOURCES", "SUCCESS");
    const json drop{{"op", "drop_party"}, {"party", added["party"]}};
    refused_then_served(c, site::party_array, drop, "ndis", "RESOURCES", "SUCCESS");
}

TEST_F(alloc_faults_test, the_namespace_answers_not_enough_memory_and_keeps_what_it_had) {
    client c;
    const json reg{{"op", "set_service"},
                   {"operation", "register"},
                   {"name", "svc"},
                   {"addresses", {"192.0.2.1:7000"}}};
    refused_then_served(c, site::service, reg, "nsp", "WSA_NOT_ENOUGH_MEMORY", "NO_ERROR");
    json more = reg;
    more["addresses"] = {"192.0.2.2:7000"};
    more["multiple"] = true;
    refused_then_served(c, site::service, more, "nsp", "WSA_NOT_ENOUGH_MEMORY", "NO_ERROR");
    const json begin{{"op", "lookup_begin"}, {"query", "*"}};
    const json begun =
        refused_then_served(c, site::lookup, begin, "nsp", "WSA_NOT_ENOUGH_MEMORY", "NO_ERROR");
    EXPECT_EQ(c.ask({{"op", "lookup_end"}, {"lookup", begun["lookup"]}}).value("status", ""),
              "NO_ERROR");
}

TEST_F(alloc_faults_test, a_session_that_cannot_be_made_is_refused_and_the_next_is_served) {
    armed_ = site::session;
    const size_t sessions = world().server->sessions();
    alloc_faults::arm(site::session, 1);
    {
        client refused(false);
        const std::vector<json> got = refused.receive();
        ASSERT_EQ(got.size(), 1u);
        EXPECT_EQ(got[0].value("status", ""), "WSA_NOT_ENOUGH_MEMORY") << got[0];
        EXPECT_TRUE(refused.eof);
        EXPECT_EQ(world().server->sessions(), sessions);
    }
    client served;
    EXPECT_EQ(world().server->sessions(), sessions + 1);
    EXPECT_EQ(served.ask({{"op", "lookup_begin"}, {"query", "*"}}).value("status", ""), "NO_ERROR");
}

TEST_F(alloc_faults_test, a_reply_that_cannot_be_made_is_refused_and_the_session_lives) {
    client c;
    armed_ = site::reply;
    const json r{{"op", "connections"}}; // changes nothing: a lost answer loses nothing
    alloc_faults::arm(site::reply, 1);
    const json refused = c.ask(r);
    EXPECT_EQ(refused.value("status", ""), "WSA_NOT_ENOUGH_MEMORY") << refused;
    EXPECT_EQ(refused.value("message", ""), "out of memory for the reply");
    EXPECT_FALSE(c.eof);
    EXPECT_TRUE(c.ask(r).contains("connections"));
}

// The converse of "a refused request changes nothing": a request that changed something is
// never answered as refused. Its reply, when it cannot be made, is written short: the real
// outcome and its handles, "truncated" where it had more.
TEST_F(alloc_faults_test, an_accepted_request_whose_reply_cannot_be_made_says_so_short) {
    client c;
    armed_ = site::reply;
    alloc_faults::arm(site::reply, 1);
    const json made = c.ask(make_call(3200));
    EXPECT_EQ(made.value("family", ""), "ndis") << made;
    EXPECT_EQ(made.value("status", ""), "SUCCESS") << made;
    ASSERT_TRUE(made.contains("vc") && made.contains("party")) << made;
    EXPECT_FALSE(made.contains("truncated")) << made;
    EXPECT_EQ(alloc_faults::pending(site::reply), 0u);
    // The call exists, and the handles of the short reply reach it.
    const json added =
        c.ask({{"op", "add_party"}, {"vc", made["vc"]}, {"party", party("b", "out2", 2001)}});
    ASSERT_EQ(added.value("status", ""), "SUCCESS") << added;
    // A drop's completion, made short: SUCCESS, and the party is gone.
    alloc_faults::arm(site::reply, 1);
    const json dropped = c.ask({{"op", "drop_party"}, {"party", added["party"]}});
    EXPECT_EQ(dropped.value("status", ""), "SUCCESS") << dropped;
    EXPECT_EQ(alloc_faults::pending(site::reply), 0u);
    EXPECT_EQ(c.ask({{"op", "drop_party"}, {"party", added["party"]}}).value("status", ""),
              "INVALID_HANDLE");
    // A reply with more than handles (a lookup's result) keeps its outcome and says it was cut.
    const json begun = c.ask({{"op", "lookup_begin"}, {"query", "*"}});
    alloc_faults::arm(site::reply, 1);
    const json next = c.ask({{"op", "lookup_next"}, {"lookup", begun["lookup"]}});
    EXPECT_EQ(next.value("status", ""), "NO_ERROR") << next;
    EXPECT_EQ(next.value("truncated", false), true) << next;
    c.ask({{"op", "lookup_end"}, {"lookup", begun["lookup"]}});
    EXPECT_EQ(c.ask({{"op", "close_call"}, {"vc", made["vc"]}, {"party", made["party"]}})
                  .value("status", ""),
              "SUCCESS");
}

// SUCCESS means the close data was sent: a drop or close whose close data found no buffer is
// done all the same, and its completion says RESOURCES, with why.
TEST_F(alloc_faults_test, close_data_that_finds_no_buffer_completes_resources) {
    client c;
    armed_ = site::close_data;
    const json made = c.ask(make_call(3300));
    ASSERT_EQ(made.value("status", ""), "SUCCESS") << made;
    const json added =
        c.ask({{"op", "add_party"}, {"vc", made["vc"]}, {"party", party("b", "out2", 2001)}});
    ASSERT_EQ(added.value("status", ""), "SUCCESS") << added;
    alloc_faults::arm(site::close_data, 1);
    const json dropped =
        c.ask({{"op", "drop_party"}, {"party", added["party"]}, {"close_data", "bye"}});
    EXPECT_EQ(dropped.value("status", ""), "RESOURCES") << dropped;
    EXPECT_NE(dropped.value("message", "").find("close data could not be sent"), std::string::npos)
        << dropped;
    EXPECT_EQ(c.ask({{"op", "drop_party"}, {"party", added["party"]}}).value("status", ""),
              "INVALID_HANDLE"); // dropped all the same
    alloc_faults::arm(site::close_data, 1);
    const json closed = c.ask(
        {{"op", "close_call"}, {"vc", made["vc"]}, {"party", made["party"]}, {"close_data", "x"}});
    EXPECT_EQ(closed.value("status", ""), "RESOURCES") << closed;
}

// The world stops before the process exits (and before EAL's own teardown).
struct world_stopper : ::testing::Environment {
    void TearDown() override { the_world.reset(); }
};
const auto* const stopper = ::testing::AddGlobalTestEnvironment(new world_stopper);

// After every test's sessions have ended: nothing any of them made is left.
TEST_F(alloc_faults_test, nothing_is_left_when_the_sessions_have_ended) {
    world().settle();
    const auto snap = world().plane->snapshot(false);
    EXPECT_EQ(world().server->sessions(), 0u);
    EXPECT_EQ(snap->calls, 0u);
    EXPECT_EQ(world().plane->names().lookups(), 0u);
    EXPECT_EQ(world().plane->names().services(), 0u);
    EXPECT_EQ(switch_state::live_vcs(), 0u);
    EXPECT_EQ(party_set::live(), 0u);
}

} // namespace
} // namespace vcplane
