// The control socket of a real vcplaned, through real client connections: sessions and their
// nesting, bad input of every kind, many idle connections, a client that never reads, a user
// the config does not allow, and the rundown of a client process killed with SIGKILL.

#include <csignal>
#include <fcntl.h>
#include <fmt/format.h>
#include <fstream>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "client/client.hh"
#include "daemon/request_statuses.hh"
#include "support/process.hh"

namespace vcplane::test {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

const std::string vcplaned = VCPLANED_PATH;
const std::string vcplanectl = VCPLANECTL_PATH;

class control_socket : public ::testing::Test {
protected:
    void SetUp() override {
        if (geteuid() != 0) {
            GTEST_SKIP() << "needs root to start EAL";
        }
        rlimit files{};
        getrlimit(RLIMIT_NOFILE, &files);
        files.rlim_cur = std::min<rlim_t>(files.rlim_max, 8192);
        setrlimit(RLIMIT_NOFILE, &files);
        socket_ = fmt::format("/tmp/vcplane-ctl-{}.sock", getpid());
        const uint16_t port = free_tcp_port();
        metrics_port_ = port;
        const std::string cfg = fmt::format(R"([eal]
lcores = [0, 1]
no_huge = true
memory_mb = 256
vdevs = ["net_null0", "net_null1"]
file_prefix = "vcplane-ctl-{0}"
[metrics]
listen = "127.0.0.1:{1}"
[control]
socket = "{2}"
mode = "0666"
max_queued_replies = 256
[connections.in]
device = "net_null0"
[connections.out]
device = "net_null1"
[calls.feed]
connection = "in"
label = 1000
[[calls.feed.parties]]
connection = "out"
label = 2000
next_hop = "02:00:00:00:00:02"
)",
                                            getpid(), port, socket_);
        config_ = write_temp_file("ctl.toml", cfg);
        start({});
    }
    // Starts the daemon on the fixture's config, its command line after `prefix` (a wrapper
    // such as setpriv); the one running is stopped first.
    void start(std::vector<std::string> prefix) {
        if (daemon_) {
            daemon_->signal(SIGTERM);
            ASSERT_EQ(daemon_->wait(30s), 0) << daemon_->output();
        }
        prefix.insert(prefix.end(), {vcplaned, "--config", config_});
        daemon_ = std::make_unique<process>(prefix);
        ASSERT_TRUE(daemon_->wait_for_output("forwarding:", 30s)) << daemon_->output();
    }
    void TearDown() override {
        if (daemon_) {
            daemon_->signal(SIGTERM);
            EXPECT_EQ(daemon_->wait(30s), 0) << daemon_->output(); // ASan: also no leaks
        }
    }
    json status() {
        control_client c(socket_);
        c.call("hello");
        json s = c.call("status");
        c.call("goodbye");
        return s;
    }
    // Waits until the daemon reports `sessions` sessions (the asker's own included).
    bool sessions_become(size_t n) {
        for (int i = 0; i < 100; ++i) {
            if (status()["sessions"] == n) {
                return true;
            }
            std::this_thread::sleep_for(50ms);
        }
        return false;
    }

    // Makes `calls` calls of 1024 parties each on session c: replies to `calls` grow by about
    // 90 KB with each.
    static void make_large_calls(control_client& c, unsigned calls) {
        for (unsigned k = 0; k < calls; ++k) {
            const auto party = [](unsigned i) {
                return json{{"name", fmt::format("p{}", i)},
                            {"connection", "out"},
                            {"label", 3000 + i},
                            {"next_hop", "02:00:00:00:00:0d"}};
            };
            const json made = c.call("make_call", {{"connection", "in"},
                                                   {"name", fmt::format("large{}", k)},
                                                   {"label", 1200 + k},
                                                   {"party", party(0)}});
            ASSERT_TRUE(control_client::ok(made)) << made;
            for (unsigned i = 1; i < 1024; ++i) {
                const json added = c.call("add_party", {{"vc", made["vc"]}, {"party", party(i)}});
                ASSERT_TRUE(control_client::ok(added)) << added;
            }
        }
    }
    static size_t sysctl_value(const char* path) {
        std::ifstream f(path);
        size_t v = 0;
        f >> v;
        return v;
    }

    std::string socket_;
    std::string config_;
    uint16_t metrics_port_ = 0;
    std::unique_ptr<process> daemon_;
};

TEST_F(control_socket, hello_and_goodbye_nest_and_the_last_goodbye_closes_the_session) {
    control_client c(socket_);
    EXPECT_EQ(c.call("status")["status"], "WSANOTINITIALISED"); // Startup comes first
    json h = c.call("hello");
    ASSERT_TRUE(control_client::ok(h)) << h;
    EXPECT_EQ(h["startups"], 1);
    EXPECT_EQ(c.call("hello")["startups"], 2);
    EXPECT_EQ(c.call("goodbye")["startups"], 1);
    EXPECT_TRUE(control_client::ok(c.call("status"))); // still in session
    EXPECT_EQ(c.call("goodbye")["startups"], 0);
    EXPECT_THROW(c.call("status", {}, 2s), client_error); // Cleanup closed the connection
}

TEST_F(control_socket, bad_input_gets_a_clear_error_and_the_session_goes_on) {
    control_client c(socket_);
    ASSERT_TRUE(control_client::ok(c.call("hello")));
    const auto raw = [&](const std::string& m) {
        c.send_raw(m);
        return json::parse(c.receive_raw(5s));
    };
    json r = raw(std::string("garbage\x00\xff", 9));
    EXPECT_EQ(r["status"], "WSAEINVAL");
    EXPECT_TRUE(r["id"].is_null());
    EXPECT_THAT(r["message"].get<std::string>(), HasSubstr("not a JSON object"));
    r = raw(R"({"id": 1, "op": "sta)"); // truncated
    EXPECT_EQ(r["status"], "WSAEINVAL");
    r = raw(std::string(70000, '{')); // over max_message_bytes
    EXPECT_THAT(r["message"].get<std::string>(), HasSubstr("exceeds the limit of 65536"));
    r = raw(R"({"id": "seven", "op": "status"})");
    EXPECT_THAT(r["message"].get<std::string>(), HasSubstr("'id' must be an unsigned integer"));
    r = raw(R"({"id": 2, "op": "frobnicate"})");
    EXPECT_EQ(r["status"], "WSAEOPNOTSUPP");
    EXPECT_EQ(r["id"], 2);
    r = raw(R"({"id": 3, "op": "make_call", "connection": 5})");
    EXPECT_EQ(r["status"], "WSAEINVAL");
    EXPECT_THAT(r["message"].get<std::string>(), HasSubstr("'connection' must be a string"));
    r = raw(R"({"id": 4, "op": "make_call", "connection": "in", "name": "x", "label": 100,
                "party": {"name": "p", "connection": "out", "label": 200, "next_hop": "zz"}})");
    EXPECT_THAT(r["message"].get<std::string>(), HasSubstr("'zz' is not a MAC address"));
    r = raw(R"({"id": 5, "op": "make_call", "connection": "in", "name": "x", "label": 1000,
                "party": {"name": "p", "connection": "out", "label": 200,
                          "next_hop": "02:00:00:00:00:09"}})");
    EXPECT_EQ(r["status"], "FAILURE"); // label 1000 is the config's call
    EXPECT_THAT(r["message"].get<std::string>(), HasSubstr("label 1000 on 'in' is in use"));
    r = raw(R"({"id": 6, "op": "drop_party", "party": 999999})");
    EXPECT_EQ(r["status"], "INVALID_HANDLE"); // a stale or unknown handle
    r = raw(R"({"id": 7, "op": "lookup_next", "lookup": 424242})");
    EXPECT_EQ(r["status"], "WSA_INVALID_HANDLE");
    // Nothing was lost: the session and the daemon serve on, the config's call is intact.
    json s = c.call("status");
    EXPECT_TRUE(control_client::ok(s));
    EXPECT_EQ(s["calls"], 1);
    c.call("goodbye");
}

// A batch: one message holding an array of requests, each answered as if it had come alone.
TEST_F(control_socket, a_batch_is_answered_request_by_request_and_bad_ones_lose_nothing) {
    control_client c(socket_);
    ASSERT_TRUE(control_client::ok(c.call("hello")));
    const json party{
        {"name", "b1"}, {"connection", "out"}, {"label", 2200}, {"next_hop", "02:00:00:00:00:0d"}};
    c.send_raw(json::array({{{"id", 10}, {"op", "status"}},
                            {{"op", "status"}}, // no id
                            "status",           // not an object
                            {{"id", 11}, {"op", "make_call"}, {"connection", 5}},
                            {{"id", 12},
                             {"op", "make_call"},
                             {"connection", "in"},
                             {"name", "batched"},
                             {"label", 1200},
                             {"party", party}},
                            {{"id", 13}, {"op", "frobnicate"}}})
                   .dump());
    std::vector<json> r;
    for (int i = 0; i < 6; ++i) {
        r.push_back(json::parse(c.receive_raw(5s))); // one message a reply: not packed
        ASSERT_TRUE(r.back().is_object()) << r.back();
    }
    EXPECT_EQ(r[0]["id"], 10);
    EXPECT_TRUE(control_client::ok(r[0]));
    EXPECT_TRUE(r[1]["id"].is_null());
    EXPECT_THAT(r[1]["message"].get<std::string>(), HasSubstr("'id' must be an unsigned integer"));
    EXPECT_TRUE(r[2]["id"].is_null());
    EXPECT_THAT(r[2]["message"].get<std::string>(), HasSubstr("not a JSON object"));
    EXPECT_EQ(r[3]["id"], 11);
    EXPECT_THAT(r[3]["message"].get<std::string>(), HasSubstr("'connection' must be a string"));
    EXPECT_EQ(r[4]["id"], 12);
    EXPECT_EQ(r[4]["status"], "SUCCESS") << r[4]; // the bad ones before it did not stop it
    EXPECT_EQ(r[5]["id"], 13);
    EXPECT_EQ(r[5]["status"], "WSAEOPNOTSUPP");

    // A batch that cannot be taken whole is refused whole: none of its calls is made.
    const auto refused = [&](const json& batch) {
        c.send_raw(batch.dump());
        return json::parse(c.receive_raw(5s));
    };
    json e = refused(json::array());
    EXPECT_EQ(e["status"], "WSAEINVAL");
    EXPECT_TRUE(e["id"].is_null());
    EXPECT_THAT(e["message"].get<std::string>(), HasSubstr("malformed batch: 0 requests"));
    json many = json::array();
    for (unsigned i = 0; i < 257; ++i) {
        json p = party;
        p["label"] = 2300 + i;
        many.push_back({{"id", 100 + i},
                        {"op", "make_call"},
                        {"connection", "in"},
                        {"name", fmt::format("m{}", i)},
                        {"label", 1300 + i},
                        {"party", p}});
    }
    e = refused(many);
    EXPECT_THAT(e["message"].get<std::string>(),
                HasSubstr("malformed batch: 257 requests (a batch holds 1 to 256)"));
    const json s = c.call("status");
    EXPECT_EQ(s["calls"], 2); // the config's and the batched one
    EXPECT_EQ(s["parties"], 2);

    // The last goodbye ends the session where it stands in the batch: what follows it is
    // answered WSANOTINITIALISED and not done (a hello cannot revive it), the goodbye last.
    c.send_raw(json::array({{{"id", 20}, {"op", "goodbye"}},
                            {{"id", 21},
                             {"op", "make_call"},
                             {"connection", "in"},
                             {"name", "late"},
                             {"label", 1201},
                             {"party", party}},
                            {{"id", 22}, {"op", "hello"}}})
                   .dump());
    for (int id : {21, 22}) {
        const json late = json::parse(c.receive_raw(5s));
        EXPECT_EQ(late["id"], id);
        EXPECT_EQ(late["status"], "WSANOTINITIALISED") << late;
    }
    const json bye = json::parse(c.receive_raw(5s));
    EXPECT_EQ(bye["id"], 20);
    EXPECT_EQ(bye["startups"], 0);
    EXPECT_THROW(c.receive_raw(2s), client_error); // closed after the goodbye's reply
    EXPECT_TRUE(sessions_become(1));
    EXPECT_EQ(status()["calls"], 1); // the batched call went with its session; 'late' never came
}

// The client library's batches: split at the protocol's limit (a client limit above the
// daemon's would have its first message refused whole), each reply in its request's place.
TEST_F(control_socket, the_client_library_splits_a_batch_and_keeps_each_reply_in_place) {
    control_client c(socket_);
    ASSERT_TRUE(control_client::ok(c.call("hello")));
    const auto party = [](unsigned i, const char* connection) {
        return json{{"name", fmt::format("s{}", i)},
                    {"connection", connection},
                    {"label", 4000 + i},
                    {"next_hop", "02:00:00:00:00:0d"}};
    };
    const json made = c.call(
        "make_call",
        {{"connection", "in"}, {"name", "split"}, {"label", 1400}, {"party", party(0, "out")}});
    ASSERT_TRUE(control_client::ok(made)) << made;
    const size_t n = control_client::max_batch + 44;  // two messages
    const size_t bad = control_client::max_batch + 4; // in the second message
    std::vector<control_client::request> adds;
    for (size_t i = 0; i < n; ++i) {
        adds.push_back(
            {"add_party",
             {{"vc", made["vc"]}, {"party", party(1 + i, i == bad ? "nowhere" : "out")}}});
    }
    const std::vector<json> r = c.call_batch(adds);
    ASSERT_EQ(r.size(), n);
    std::set<uint64_t> parties;
    for (size_t i = 0; i < n; ++i) {
        if (i == bad) {
            EXPECT_FALSE(control_client::ok(r[i])) << r[i];
            EXPECT_THAT(r[i]["message"].get<std::string>(), HasSubstr("nowhere")) << r[i];
            continue;
        }
        ASSERT_TRUE(control_client::ok(r[i])) << i << ": " << r[i];
        parties.insert(r[i]["party"].get<uint64_t>());
    }
    EXPECT_EQ(parties.size(), n - 1); // each its own party: no reply given twice
    EXPECT_EQ(status()["parties"], 1 + 1 + (n - 1));

    // A message the daemon refuses whole: every request of it gets the refusal, none is done,
    // and the session goes on.
    const std::vector<json> refused = c.call_batch({{"make_call",
                                                     {{"connection", "in"},
                                                      {"name", std::string(70000, 'x')},
                                                      {"label", 1401},
                                                      {"party", party(900, "out")}}},
                                                    {"status"}});
    ASSERT_EQ(refused.size(), 2u);
    for (const json& e : refused) {
        EXPECT_EQ(e["status"], "WSAEINVAL") << e;
        EXPECT_TRUE(e["id"].is_null()) << e;
        EXPECT_THAT(e["message"].get<std::string>(), HasSubstr("exceeds the limit"));
    }
    EXPECT_EQ(status()["calls"], 2); // the config's and 'split'

    // Arguments that are not an object: refused by the library before anything is sent.
    EXPECT_THROW(c.call_batch({{"status"}, {"status", json::array()}}), client_error);
    EXPECT_TRUE(c.call_batch({}).empty());
    const json s = c.call("status");
    EXPECT_TRUE(control_client::ok(s)) << s;
    EXPECT_EQ(s["parties"], 1 + 1 + (n - 1));
    EXPECT_EQ(c.call("goodbye")["startups"], 0);
}

// Packed replies: a session that asks for them at hello gets each message as an array of
// replies, many in one when they are made together.
TEST_F(control_socket, packed_replies_put_a_batchs_replies_in_few_messages) {
    control_client c(socket_);
    c.send_raw(R"({"id": 1, "op": "hello", "pack_replies": "yes"})");
    json r = json::parse(c.receive_raw(5s));
    EXPECT_EQ(r["status"], "WSAEINVAL");
    EXPECT_THAT(r["message"].get<std::string>(), HasSubstr("'pack_replies' must be true or false"));
    EXPECT_EQ(c.call("status")["status"], "WSANOTINITIALISED"); // that hello started nothing

    c.send_raw(R"({"id": 2, "op": "hello", "pack_replies": true})");
    r = json::parse(c.receive_raw(5s));
    ASSERT_TRUE(r.is_array()) << r; // the hello's own reply is the first packed message
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0]["id"], 2);
    EXPECT_EQ(r[0]["startups"], 1);

    json batch = json::array();
    for (unsigned i = 0; i < 200; ++i) {
        batch.push_back({{"id", 1000 + i}, {"op", "status"}});
    }
    c.send_raw(batch.dump());
    std::vector<uint64_t> ids;
    size_t messages = 0;
    while (ids.size() < 200) {
        r = json::parse(c.receive_raw(5s));
        ASSERT_TRUE(r.is_array() && !r.empty()) << r;
        ASSERT_LE(r.dump().size(), 65536u) << "a packed message stays within max_message_bytes";
        ++messages;
        for (const json& one : r) {
            EXPECT_TRUE(control_client::ok(one)) << one;
            ids.push_back(one["id"].get<uint64_t>());
        }
    }
    for (unsigned i = 0; i < 200; ++i) {
        EXPECT_EQ(ids[i], 1000 + i); // in order, each once
    }
    EXPECT_LT(messages, 50u) << "200 replies made together should share messages";

    // The client library reads packed messages too.
    const json s = c.call("status");
    EXPECT_TRUE(control_client::ok(s)) << s;
    EXPECT_EQ(s["sessions"], 1);
    EXPECT_EQ(c.call("goodbye")["startups"], 0);
}

TEST_F(control_socket, a_session_makes_grows_shrinks_and_closes_a_multipoint_call) {
    control_client c(socket_);
    ASSERT_TRUE(control_client::ok(c.call("hello")));
    const json first{
        {"name", "one"}, {"connection", "out"}, {"label", 2100}, {"next_hop", "02:00:00:00:00:0b"}};
    json made = c.call("make_call",
                       {{"connection", "in"}, {"name", "mine"}, {"label", 1100}, {"party", first}});
    ASSERT_TRUE(control_client::ok(made)) << made;
    json two = c.call("add_party", {{"vc", made["vc"]},
                                    {"party",
                                     {{"name", "two"},
                                      {"connection", "out"},
                                      {"label", 2101},
                                      {"next_hop", "02:00:00:00:00:0c"}}}});
    ASSERT_TRUE(control_client::ok(two)) << two;
    // Dropping the party the call was made with: answered when the drop completes.
    json dropped = c.call("drop_party", {{"party", made["party"]}, {"close_data", "bye"}});
    EXPECT_EQ(dropped["status"], "SUCCESS") << dropped;
    EXPECT_EQ(dropped["party"], made["party"]);
    EXPECT_EQ(c.call("status")["parties"], 2); // the config's and "two"
    // The last party is never dropped; the call is closed with it instead.
    EXPECT_EQ(c.call("drop_party", {{"party", two["party"]}})["status"], "FAILURE");
    json closed = c.call("close_call", {{"vc", made["vc"]}, {"party", two["party"]}});
    EXPECT_EQ(closed["status"], "SUCCESS") << closed;
    EXPECT_EQ(c.call("status")["calls"], 1);
    // Both handles are dead now.
    EXPECT_EQ(c.call("drop_party", {{"party", two["party"]}})["status"], "INVALID_HANDLE");
    EXPECT_EQ(c.call("close_call", {{"vc", made["vc"]}})["status"], "INVALID_HANDLE");
    c.call("goodbye");
}

TEST_F(control_socket, a_call_made_fair_says_so_and_its_contract_can_change_it) {
    control_client c(socket_);
    ASSERT_TRUE(control_client::ok(c.call("hello")));
    const json first{
        {"name", "one"}, {"connection", "out"}, {"label", 2100}, {"next_hop", "02:00:00:00:00:0b"}};
    json made = c.call("make_call", {{"connection", "in"},
                                     {"name", "even"},
                                     {"label", 1100},
                                     {"party", first},
                                     {"fair", true}});
    ASSERT_TRUE(control_client::ok(made)) << made;
    auto fair_of = [&] {
        const json listed = c.call("calls");
        for (const json& call : listed["calls"]) {
            if (call["name"] == "even") {
                return call["fair"].get<bool>();
            }
        }
        ADD_FAILURE() << "no call 'even' in " << listed;
        return false;
    };
    EXPECT_TRUE(fair_of());
    EXPECT_TRUE(
        control_client::ok(c.call("modify_call_qos", {{"vc", made["vc"]}, {"fair", false}})));
    EXPECT_FALSE(fair_of());
    json bad = c.call("modify_call_qos", {{"vc", made["vc"]}, {"fair", "yes"}});
    EXPECT_EQ(bad["status"], "WSAEINVAL") << bad;
    EXPECT_FALSE(fair_of());
    c.call("goodbye");
}

// Defect: drop_party, close_call and lookup_next still pending when the session's last goodbye
// arrived never got a reply. Every request gets exactly one reply, none carries PENDING, and the
// goodbye is answered last.
TEST_F(control_socket, requests_pending_at_the_last_goodbye_are_answered_before_it) {
    control_client c(socket_);
    ASSERT_TRUE(control_client::ok(c.call("hello")));
    const auto party = [](const std::string& name, int label) {
        return json{{"name", name},
                    {"connection", "out"},
                    {"label", label},
                    {"next_hop", "02:00:00:00:00:0b"}};
    };
    json multi = c.call(
        "make_call",
        {{"connection", "in"}, {"name", "multi"}, {"label", 1200}, {"party", party("one", 2200)}});
    ASSERT_TRUE(control_client::ok(multi)) << multi;
    ASSERT_TRUE(control_client::ok(
        c.call("add_party", {{"vc", multi["vc"]}, {"party", party("two", 2201)}})));
    json single = c.call("make_call", {{"connection", "in"},
                                       {"name", "single"},
                                       {"label", 1201},
                                       {"party", party("only", 2202)}});
    ASSERT_TRUE(control_client::ok(single)) << single;
    json lookup = c.call("lookup_begin", {{"query", "*"}});
    ASSERT_TRUE(control_client::ok(lookup)) << lookup;

    // Sent back to back: the daemon reads them in one wake-up, before any completes.
    std::string batch;
    const std::vector<json> requests = {
        {{"id", 900}, {"op", "drop_party"}, {"party", multi["party"]}},
        {{"id", 901}, {"op", "close_call"}, {"vc", single["vc"]}, {"party", single["party"]}},
        {{"id", 902}, {"op", "lookup_next"}, {"lookup", lookup["lookup"]}},
        {{"id", 903}, {"op", "goodbye"}}};
    for (const auto& r : requests) {
        c.send_raw(r.dump());
    }
    std::map<uint64_t, std::vector<json>> replies;
    std::vector<uint64_t> order;
    for (;;) {
        std::string m;
        try {
            m = c.receive_raw(10s);
        } catch (const client_error&) {
            break; // the connection closed after the last reply
        }
        json r = json::parse(m);
        if (r.contains("event")) {
            continue;
        }
        ASSERT_TRUE(r["id"].is_number_unsigned()) << r;
        EXPECT_NE(r["status"], "PENDING") << r;
        order.push_back(r["id"].get<uint64_t>());
        replies[r["id"].get<uint64_t>()].push_back(r);
    }
    for (uint64_t id : {900, 901, 902, 903}) {
        EXPECT_EQ(replies[id].size(), 1u) << "request " << id;
    }
    ASSERT_FALSE(order.empty());
    EXPECT_EQ(order.back(), 903u); // the goodbye last
    EXPECT_EQ(replies[900].at(0)["status"], "SUCCESS") << replies[900].at(0);
    EXPECT_EQ(replies[901].at(0)["status"], "SUCCESS") << replies[901].at(0);
    // The lookup ended with the session, or its result came first.
    const std::string next = replies[902].at(0)["status"];
    EXPECT_TRUE(next == "NO_ERROR" || next == "WSA_E_CANCELLED") << replies[902].at(0);
    EXPECT_TRUE(sessions_become(1)); // the asker's own
}

TEST_F(control_socket, a_thousand_idle_connections_cost_nothing_and_go_away) {
    std::vector<int> idle;
    for (int i = 0; i < 1000; ++i) {
        const int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::snprintf(a.sun_path, sizeof(a.sun_path), "%s", socket_.c_str());
        ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0) << i;
        idle.push_back(fd);
    }
    EXPECT_TRUE(sessions_become(1001));
    for (int fd : idle) {
        close(fd);
    }
    EXPECT_TRUE(sessions_become(1));
}

TEST_F(control_socket, a_client_that_never_reads_is_disconnected_and_others_are_served) {
    control_client greedy(socket_);
    ASSERT_TRUE(control_client::ok(greedy.call("hello")));
    bool cut = false;
    try {
        for (int i = 0; i < 20000 && !cut; ++i) {
            greedy.send_raw(json{{"id", 100 + i}, {"op", "status"}}.dump());
        }
    } catch (const client_error&) {
        cut = true; // the daemon hung up on it
    }
    EXPECT_TRUE(sessions_become(1)) << "the greedy session should be gone";
    EXPECT_TRUE(control_client::ok(status()));
    EXPECT_THAT(daemon_->output(), HasSubstr("replies unread; disconnecting it"));
}

// Replies made in one loop iteration are sent together: a burst of more requests than
// max_queued_replies (256 here) from a client that reads is answered whole and in order; only
// replies the client leaves unread count against the limit.
TEST_F(control_socket, a_burst_of_requests_is_answered_in_order_and_the_session_lives) {
    control_client c(socket_);
    ASSERT_TRUE(control_client::ok(c.call("hello")));
    constexpr int burst = 300;
    for (int i = 0; i < burst; ++i) {
        c.send_raw(json{{"id", 1000 + i}, {"op", "hello"}}.dump());
    }
    for (int i = 0; i < burst; ++i) {
        const json r = json::parse(c.receive_raw(std::chrono::seconds(5)));
        EXPECT_EQ(r.value("id", uint64_t(0)), uint64_t(1000 + i));
        EXPECT_TRUE(control_client::ok(r)) << r.dump();
    }
    EXPECT_TRUE(control_client::ok(c.call("status")));
    EXPECT_THAT(daemon_->output(), Not(HasSubstr("replies unread")));
}

TEST_F(control_socket, a_user_the_config_does_not_allow_is_refused) {
    const pid_t child = fork();
    if (child == 0) {
        if (setgid(65534) != 0 || setuid(65534) != 0) {
            _exit(10);
        }
        try {
            control_client c(socket_);
            json r = c.call("hello", json::object(), 5s);
            if (r["status"] != "WSAEACCES" || !r["id"].is_null()) {
                _exit(11);
            }
            try {
                c.receive_raw(5s);
                _exit(12);
            } catch (const client_error&) {
                // and nothing more: the connection is closed
            }
            // A batch gets the refusal for each of its requests.
            control_client b(socket_);
            const std::vector<json> rs = b.call_batch({{"hello"}, {"status"}}, 5s);
            if (rs.size() != 2 || rs[0]["status"] != "WSAEACCES" ||
                rs[1]["status"] != "WSAEACCES" || !rs[1]["id"].is_null()) {
                _exit(14);
            }
            _exit(0);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "refused client: %s\n", e.what());
            _exit(13);
        }
    }
    int status = 0;
    waitpid(child, &status, 0);
    EXPECT_EQ(WEXITSTATUS(status), 0);
    EXPECT_THAT(daemon_->output(), HasSubstr("refused pid"));
    EXPECT_TRUE(sessions_become(1));
}

// Defect: a shell line that could not become a request (a malformed party, a word where a
// number goes) ended the whole session, tearing down the calls it held. It is refused with its
// reason and the session keeps everything.
TEST_F(control_socket, a_malformed_shell_line_is_refused_and_the_session_keeps_its_calls) {
    const std::string fifo = fmt::format("/tmp/vcplane-ctl-bad-{}.in", getpid());
    mkfifo(fifo.c_str(), 0600);
    process shell(
        {"/bin/sh", "-c", fmt::format("exec {} -s {} shell < {}", vcplanectl, socket_, fifo)});
    const int in = open(fifo.c_str(), O_WRONLY);
    const std::string script = "make in kept 1500 one@out:2500:02:00:00:00:00:09\n"
                               "add 1 not-a-party\n"
                               "make in other 1501 two@out:2501:02:00:00:00:00:0a --bogus\n"
                               "drop twelve\n"
                               "close 12abc\n"
                               "frobnicate\n"
                               "register still-here 192.0.2.1:7000\n"
                               "status\n"; // its table comes when every line above is done
    ASSERT_EQ(write(in, script.data(), script.size()), ssize_t(script.size()));
    ASSERT_TRUE(shell.wait_for_output("lookups", 10s)) << shell.output();
    const std::string out = shell.output();
    EXPECT_THAT(out, HasSubstr("add: 'not-a-party' is not NAME@CONNECTION:LABEL:MAC"));
    EXPECT_THAT(out, HasSubstr("make: unknown option '--bogus'"));
    EXPECT_THAT(out, HasSubstr("drop: 'twelve' is not a number"));
    EXPECT_THAT(out, HasSubstr("close: '12abc' is not a number")); // not read as 12
    EXPECT_THAT(out, HasSubstr("unknown shell command 'frobnicate'"));
    EXPECT_TRUE(shell.running());
    json s = status();
    EXPECT_EQ(s["calls"], 2); // the config's and the shell's
    EXPECT_EQ(s["services"], 1);
    close(in); // end of input: the shell says goodbye, its call and service go
    EXPECT_EQ(shell.wait(5s), 1) << shell.output(); // 1: some of its lines failed
    unlink(fifo.c_str());
    ASSERT_TRUE(sessions_become(1));
    s = status();
    EXPECT_EQ(s["calls"], 1);
    EXPECT_EQ(s["services"], 0);
}

TEST_F(control_socket, a_killed_client_is_run_down_and_everything_it_owned_is_freed) {
    // A real client process: makes a call, adds a party, registers a service, holds a lookup.
    const std::string fifo = fmt::format("/tmp/vcplane-ctl-{}.in", getpid());
    mkfifo(fifo.c_str(), 0600);
    process shell(
        {"/bin/sh", "-c", fmt::format("exec {} -s {} shell < {}", vcplanectl, socket_, fifo)});
    const int in = open(fifo.c_str(), O_WRONLY);
    const std::string script = "make in held 1500 one@out:2500:02:00:00:00:00:09\n"
                               "register held-svc 192.0.2.1:7000\n"
                               "lookup *\n";
    ASSERT_EQ(write(in, script.data(), script.size()), ssize_t(script.size()));
    ASSERT_TRUE(shell.wait_for_output("\"lookup\":", 10s)) << shell.output();
    const std::string vc = [&] {
        const std::string out = shell.output();
        const auto at = out.find("\"vc\":");
        return out.substr(at + 5, out.find_first_of(",}", at) - at - 5);
    }();
    ASSERT_TRUE(shell.wait_for_output("ready session", 1s));
    // The shell holds its session: add a party to its call, so it owns two.
    const std::string add = "add " + vc + " two@out:2501:02:00:00:00:00:0a\n";
    ASSERT_EQ(write(in, add.data(), add.size()), ssize_t(add.size()));
    // Its reply is the second one naming a party (the make's reply names the first).
    const auto parties_named = [&] {
        const std::string out = shell.output();
        size_t n = 0;
        for (size_t at = out.find("\"party\":"); at != std::string::npos;
             at = out.find("\"party\":", at + 1)) {
            ++n;
        }
        return n;
    };
    for (int i = 0; i < 500 && parties_named() < 2; ++i) {
        std::this_thread::sleep_for(10ms);
    }
    ASSERT_EQ(parties_named(), 2u) << shell.output();
    json s = status();
    EXPECT_EQ(s["calls"], 2);
    EXPECT_EQ(s["parties"], 3);
    EXPECT_EQ(s["lookups"], 1);
    EXPECT_EQ(s["services"], 1);

    shell.signal(SIGKILL);
    shell.wait(5s);
    close(in);
    unlink(fifo.c_str());
    // Rundown: its call closed through the call manager, its lookup ended, its service gone.
    ASSERT_TRUE(sessions_become(1));
    s = status();
    EXPECT_EQ(s["calls"], 1); // the config's call is untouched
    EXPECT_EQ(s["parties"], 1);
    EXPECT_EQ(s["lookups"], 0);
    EXPECT_EQ(s["services"], 0);
    EXPECT_EQ(s["grace_pending"], 0);
    EXPECT_THAT(daemon_->output(), ::testing::Not(HasSubstr("error")));
}

TEST_F(control_socket, a_reply_larger_than_the_default_socket_buffer_arrives_whole) {
    // A message must fit the socket's send buffer whole (net.core.wmem_default, 208 KiB on
    // Debian): three 1024-party calls list past it. The daemon grows its buffer to fit.
    const size_t limit = sysctl_value("/proc/sys/net/core/wmem_default");
    const unsigned calls = unsigned(limit / 90000 + 1);
    control_client c(socket_);
    c.call("hello");
    make_large_calls(c, calls);
    const json listed = c.call("calls");
    ASSERT_TRUE(listed.contains("calls")) << listed.dump().substr(0, 300);
    EXPECT_GT(listed.dump().size(), limit);
    ASSERT_EQ(listed["calls"].size(), calls + 1); // and the config's
    for (const auto& call : listed["calls"]) {
        EXPECT_EQ(call["parties"].size(), call["name"] == "feed" ? 1u : 1024u) << call["name"];
    }
    EXPECT_EQ(c.call("status")["calls"], calls + 1); // the session and its calls live on
    c.call("goodbye");
}

TEST_F(control_socket, a_packed_reply_past_max_message_bytes_goes_alone) {
    control_client c(socket_);
    ASSERT_EQ(c.call("hello", {{"pack_replies", true}})["startups"], 1);
    make_large_calls(c, 1); // its listing is about 90 KB, past the 64 KiB of a packed message
    c.send_raw(json::array({{{"id", 1}, {"op", "status"}},
                            {{"id", 2}, {"op", "calls"}},
                            {{"id", 3}, {"op", "status"}}})
                   .dump());
    std::vector<json> messages;
    for (int i = 0; i < 3; ++i) {
        messages.push_back(json::parse(c.receive_raw(5s)));
        ASSERT_TRUE(messages.back().is_array() && messages.back().size() == 1) << i;
    }
    EXPECT_EQ(messages[0][0]["id"], 1);
    EXPECT_EQ(messages[1][0]["id"], 2);
    EXPECT_GT(messages[1].dump().size(), 65536u);
    EXPECT_EQ(messages[1][0]["calls"].size(), 2u);
    EXPECT_EQ(messages[2][0]["id"], 3);
    c.call("goodbye");
}

// Defect: with max_message_bytes above the socket's send buffer, replies packed up to
// max_message_bytes made a message the kernel refuses whole, and the session was cut off.
TEST_F(control_socket, packed_replies_stay_within_the_send_buffer) {
    std::ifstream in(config_);
    std::string cfg((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    cfg.replace(cfg.find("max_queued_replies = 256"), 24,
                "max_queued_replies = 256\nmax_message_bytes = 1048576");
    std::ofstream(config_) << cfg;
    start({});
    control_client c(socket_);
    ASSERT_EQ(c.call("hello", {{"pack_replies", true}})["startups"], 1);
    make_large_calls(c, 1);
    const size_t buffer = sysctl_value("/proc/sys/net/core/wmem_default");
    json batch = json::array();
    const unsigned listings = unsigned(buffer / 90000 + 2); // past the buffer together
    for (unsigned i = 0; i < listings; ++i) {
        batch.push_back({{"id", 10 + i}, {"op", "calls"}});
    }
    c.send_raw(batch.dump());
    unsigned got = 0;
    while (got < listings) {
        const json m = json::parse(c.receive_raw(5s));
        ASSERT_TRUE(m.is_array()) << m.dump().substr(0, 200);
        for (const json& one : m) {
            EXPECT_EQ(one["id"], 10 + got);
            EXPECT_EQ(one["calls"].size(), 2u);
            ++got;
        }
    }
    EXPECT_EQ(c.call("status")["calls"], 2); // the session lives, its call with it
    c.call("goodbye");
}

TEST_F(control_socket, a_reply_past_the_kernels_limit_is_refused_and_the_session_lives) {
    // Without CAP_NET_ADMIN the send buffer stops at twice net.core.wmem_max.
    const size_t limit = 2 * sysctl_value("/proc/sys/net/core/wmem_max");
    const unsigned calls = unsigned(limit / 90000 + 1);
    if (calls > 24) {
        GTEST_SKIP() << "net.core.wmem_max is " << limit / 2 << ": a reply past it needs " << calls
                     << " calls of 1024 parties";
    }
    start({"/usr/bin/setpriv", "--inh-caps=-net_admin", "--bounding-set=-net_admin"});
    control_client c(socket_);
    c.call("hello");
    make_large_calls(c, calls);
    const json refused = c.call("calls");
    EXPECT_EQ(refused["status"], "WSA_NOT_ENOUGH_MEMORY") << refused.dump().substr(0, 300);
    EXPECT_THAT(refused.value("message", ""), HasSubstr("net.core.wmem_max"));
    EXPECT_EQ(c.call("status")["calls"], calls + 1); // nothing lost
    EXPECT_THAT(daemon_->output(), HasSubstr("exceeds the control socket's send buffer"));
    c.call("goodbye");
}

// Counted as it happened: after a session that goes through every family (and through a
// binding whose call manager went away), every (family, operation, status) series the daemon
// exposes is one daemon/request_statuses.hh lists, and the answers seen are the ones counted.
TEST_F(control_socket, every_counted_outcome_is_one_its_family_lists) {
    control_client c(socket_);
    ASSERT_TRUE(control_client::ok(c.call("hello")));
    EXPECT_EQ(c.call("status")["status"], "NO_ERROR");
    EXPECT_EQ(c.call("set_service",
                     {{"operation", "register"}, {"name", "svc"}, {"addresses", {"a"}}})["status"],
              "NO_ERROR");
    const json begun = c.call("lookup_begin", {{"query", "*"}});
    ASSERT_EQ(begun["status"], "NO_ERROR") << begun;
    EXPECT_EQ(c.call("lookup_next", {{"lookup", begun["lookup"]}})["status"], "NO_ERROR");
    EXPECT_EQ(c.call("lookup_end", {{"lookup", begun["lookup"]}})["status"], "NO_ERROR");
    const json party = {
        {"name", "p"}, {"connection", "out"}, {"label", 2100}, {"next_hop", "02:00:00:00:00:0e"}};
    const json made = c.call(
        "make_call", {{"connection", "in"}, {"name", "m"}, {"label", 1100}, {"party", party}});
    ASSERT_TRUE(control_client::ok(made)) << made;
    json second = party;
    second["name"] = "q";
    second["label"] = 2101;
    const json added = c.call("add_party", {{"vc", made["vc"]}, {"party", second}});
    ASSERT_TRUE(control_client::ok(added)) << added;
    EXPECT_EQ(c.call("drop_party", {{"party", added["party"]}})["status"], "SUCCESS");
    EXPECT_EQ(c.call("modify_call_qos", {{"vc", made["vc"]}, {"sustained_rate", 0}})["status"],
              "SUCCESS");
    EXPECT_EQ(c.call("close_call", {{"vc", made["vc"]}, {"party", made["party"]}})["status"],
              "SUCCESS");
    EXPECT_EQ(c.call("delete_vc", {{"vc", 4242}})["status"], "INVALID_HANDLE");
    EXPECT_EQ(c.call("nonsense")["status"], "WSAEOPNOTSUPP");
    EXPECT_EQ(c.call("disconnect", {{"connection", "in"}})["status"], "NOT_SUPPORTED");
    // A VC on "out", then "out" goes away: the handle's next use is NOINTERFACE (its binding is
    // gone), the one after INVALID_HANDLE (the handle died with it).
    const json vc = c.call("create_vc", {{"connection", "out"}});
    ASSERT_TRUE(control_client::ok(vc)) << vc;
    ASSERT_EQ(c.call("port_detach", {{"device", "net_null1"}})["status"], "SUCCESS");
    EXPECT_EQ(c.call("delete_vc", {{"vc", vc["vc"]}})["status"], "NOINTERFACE");
    EXPECT_EQ(c.call("delete_vc", {{"vc", vc["vc"]}})["status"], "INVALID_HANDLE");
    EXPECT_EQ(c.call("port_attach", {{"devargs", "net_null1"}})["status"], "SUCCESS");
    c.call("goodbye");

    const request_status_table& table = counted_status_table();
    std::set<std::string> seen, unlisted;
    for (int i = 0; i < 50 && seen.count("ndis delete_vc NOINTERFACE") == 0; ++i) {
        std::this_thread::sleep_for(100ms); // the scrape reads a snapshot made once a second
        seen.clear();
        unlisted.clear();
        std::istringstream body(http_get(metrics_port_, "/metrics"));
        for (std::string line; std::getline(body, line);) {
            std::smatch m;
            static const std::regex series(
                R"re(^vcplane_contract_operations_total\{family="([^"]*)",operation="([^"]*)",status="([^"]*)"\})re");
            if (!std::regex_search(line, m, series)) {
                continue;
            }
            seen.insert(fmt::format("{} {} {}", m[1].str(), m[2].str(), m[3].str()));
            const auto f = table.find(m[1].str());
            const bool listed = f != table.end() && f->second.count(m[2].str()) != 0 &&
                                f->second.at(m[2].str()).count(m[3].str()) != 0;
            if (!listed) {
                unlisted.insert(line);
            }
        }
    }
    EXPECT_THAT(unlisted, ::testing::IsEmpty());
    for (const char* s : {"nsp lookup_next NO_ERROR", "nsp lookup_next_complete NO_ERROR",
                          "ndis delete_vc NOINTERFACE", "ndis delete_vc INVALID_HANDLE",
                          "nmr detach_client SUCCESS", "nmr detach_provider SUCCESS",
                          "nsp unknown WSAEOPNOTSUPP", "cm disconnect NOT_SUPPORTED"}) {
        EXPECT_EQ(seen.count(s), 1u) << s;
    }
}

} // namespace
} // namespace vcplane::test
