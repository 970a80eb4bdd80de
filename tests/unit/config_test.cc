// The config parser: a valid file becomes the right structs; every bad input gives an error
// that names the file, the line and the key, and says what is expected.

#include <fmt/format.h>
#include <fstream>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/config.hh"
#include "config/config_diff.hh"

namespace vcplane {
namespace {

using ::testing::HasSubstr;

const std::string base = R"([eal]
lcores = [0, 1]
no_huge = true
memory_mb = 256
vdevs = ["net_null0", "net_null1"]

[connections.in]
device = "net_null0"

[connections.out]
device = "net_null1"
media = "mpls"
mtu = 9000
bandwidth_bps = 10_000_000_000
)";

const std::string good_call = R"(
[calls.feed-a]
connection = "in"
label = 1000

[[calls.feed-a.parties]]
name = "a"
connection = "out"
label = 2001
next_hop = "02:00:5e:10:00:01"

[[calls.feed-a.parties]]
connection = "out"
label = 2002
next_hop = "02-00-5E-10-00-02"
)";

// Parses text and returns the single problem it must report.
std::string only_problem(const std::string& text) {
    try {
        parse_config_string(text, "vcplane.toml");
    } catch (const config_error& e) {
        EXPECT_EQ(e.problems().size(), 1u) << e.what();
        return e.problems().empty() ? "" : e.problems()[0];
    }
    ADD_FAILURE() << "no error for:\n" << text;
    return "";
}

TEST(config, a_valid_file_is_read_completely) {
    const auto cfg = parse_config_string(base + good_call, "vcplane.toml");
    EXPECT_EQ(cfg.eal.lcores, (std::vector<unsigned>{0, 1}));
    EXPECT_TRUE(cfg.eal.no_huge);
    EXPECT_EQ(cfg.eal.memory_mb, 256u);
    ASSERT_EQ(cfg.connections.size(), 2u);
    const auto* out = cfg.find_connection("out");
    ASSERT_NE(out, nullptr);
    EXPECT_EQ(out->device, "net_null1");
    EXPECT_EQ(out->mtu, 9000u);
    EXPECT_EQ(out->bandwidth_bps, 10'000'000'000ull);
    EXPECT_EQ(out->media, media_kind::mpls);
    ASSERT_EQ(cfg.calls.size(), 1u);
    const auto& call = cfg.calls[0];
    EXPECT_EQ(call.name, "feed-a");
    EXPECT_EQ(call.key, 1000u);
    ASSERT_EQ(call.parties.size(), 2u);
    EXPECT_EQ(call.parties[0].name, "a");
    EXPECT_EQ(call.parties[1].name, "party1"); // unnamed parties are numbered
    EXPECT_EQ(call.parties[1].next_hop, (mac_address{0x02, 0x00, 0x5e, 0x10, 0x00, 0x02}));
    EXPECT_EQ(cfg.party_count(), 2u);
    EXPECT_EQ(cfg.metrics.listen, "127.0.0.1:9469");
}

TEST(config, the_embedded_default_is_valid) {
    const auto cfg = parse_config_string(embedded_default_config(), embedded_default_name);
    EXPECT_EQ(cfg.connections.size(), 4u);
    ASSERT_EQ(cfg.calls.size(), 1u);
    EXPECT_EQ(cfg.calls[0].parties.size(), 3u);
}

TEST(config, label_out_of_range_names_file_line_and_key) {
    std::string text = base + good_call;
    text.replace(text.find("label = 2002"), 12, "label = 1048576");
    EXPECT_EQ(only_problem(text),
              "vcplane.toml:28: calls.feed-a.parties[1].label: 1048576 is not an MPLS label "
              "(16..1048575, or 3 to pop)");
    text.replace(text.find("label = 1048576"), 15, "label = 4");
    EXPECT_EQ(only_problem(text),
              "vcplane.toml:28: calls.feed-a.parties[1].label: 4 is not an MPLS label "
              "(16..1048575, or 3 to pop)");
}

TEST(config, reserved_labels_are_refused) {
    std::string text = base + good_call;
    text.replace(text.find("label = 1000"), 12, "label = 13");
    EXPECT_THAT(only_problem(text),
                HasSubstr("calls.feed-a.label: 13 is not an MPLS label (16..1048575)"));
}

TEST(config, malformed_mac_is_refused_with_the_expected_form) {
    std::string text = base + good_call;
    text.replace(text.find("02:00:5e:10:00:01"), 17, "02:00:5e:10:00");
    EXPECT_THAT(only_problem(text),
                HasSubstr("vcplane.toml:24: calls.feed-a.parties[0].next_hop: '02:00:5e:10:00' "
                          "is not a MAC address"));
    for (const char* bad : {"02:00:5e:10:00:0g", "02:00:5e-10:00:01", "0200.5e10.0001", ""}) {
        text = base + good_call;
        text.replace(text.find("02:00:5e:10:00:01"), 17, bad);
        EXPECT_THAT(only_problem(text), HasSubstr("is not a MAC address")) << bad;
    }
}

TEST(config, zero_mac_is_not_a_next_hop) {
    std::string text = base + good_call;
    text.replace(text.find("02:00:5e:10:00:01"), 17, "00:00:00:00:00:00");
    EXPECT_THAT(only_problem(text), HasSubstr("not a usable next hop"));
}

TEST(config, unknown_connection_lists_the_known_ones) {
    std::string text = base + good_call;
    text.replace(text.find("connection = \"out\""), 18, "connection = \"nope\"");
    EXPECT_THAT(only_problem(text),
                HasSubstr("calls.feed-a.parties[0].connection: no connection named 'nope' "
                          "(known: in, out)"));
}

TEST(config, a_label_used_twice_on_one_connection_is_refused) {
    const std::string second = R"(
[calls.feed-b]
connection = "in"
label = 1000
[[calls.feed-b.parties]]
connection = "out"
label = 3000
next_hop = "02:00:5e:10:00:03"
)";
    EXPECT_THAT(only_problem(base + good_call + second),
                HasSubstr("calls.feed-b.label: label 1000 on connection 'in' is already used by "
                          "calls.feed-a"));
}

TEST(config, duplicate_party_names_and_devices_are_refused) {
    std::string text = base + good_call;
    text.replace(text.find("connection = \"out\"\nlabel = 2002"), 0, "name = \"a\"\n");
    EXPECT_THAT(only_problem(text), HasSubstr("party name 'a' is used twice in calls.feed-a"));
    text = base + "[connections.again]\ndevice = \"net_null1\"\n";
    EXPECT_THAT(
        only_problem(text),
        HasSubstr("connections.again.device: net_null1 is already used by connections.out"));
}

TEST(config, media_decides_whether_a_key_is_a_label_or_a_vid) {
    std::string text = base + good_call;
    text.replace(text.find("label = 1000"), 12, "vid = 10");
    EXPECT_THAT(only_problem(text),
                HasSubstr("calls.feed-a.vid: connection 'in' carries mpls: use label instead"));
    const std::string vlan = R"([eal]
lcores = [0, 1]
[connections.v]
device = "x"
media = "vlan"
[calls.c]
connection = "v"
vid = 4095
[[calls.c.parties]]
connection = "v"
vid = 20
next_hop = "02:00:00:00:00:01"
)";
    EXPECT_THAT(only_problem(vlan), HasSubstr("calls.c.vid: 4095 is not a VLAN ID (1..4094)"));
}

// The edges: a port connection is one VC, and each party's action follows from its egress.
const std::string edges = R"([eal]
lcores = [0, 1]
[connections.feed]
device = "a"
media = "port"
[connections.core]
device = "b"
[connections.access]
device = "c"
media = "vlan"
[connections.host]
device = "d"
media = "port"
)";

TEST(config, a_port_connection_carries_one_call_without_a_key) {
    const auto cfg = parse_config_string(edges + R"(
[calls.md]
connection = "feed"
ttl = "pipe"
[[calls.md.parties]]
connection = "core"
label = 100
next_hop = "02:00:00:00:00:01"
[[calls.md.parties]]
connection = "access"
vid = 20
next_hop = "02:00:00:00:00:02"
[[calls.md.parties]]
connection = "host"
next_hop = "02:00:00:00:00:03"
)",
                                         "vcplane.toml");
    ASSERT_EQ(cfg.calls.size(), 1u);
    EXPECT_EQ(cfg.calls[0].key, port_key);
    EXPECT_EQ(cfg.calls[0].encap.ttl, ttl_model::pipe);
    EXPECT_EQ(cfg.calls[0].parties[2].key, port_key);

    EXPECT_EQ(only_problem(edges + R"(
[calls.md]
connection = "feed"
label = 100
[[calls.md.parties]]
connection = "host"
next_hop = "02:00:00:00:00:03"
)"),
              "vcplane.toml:17: calls.md.label: connection 'feed' is a port connection, which "
              "carries no label: leave it out");
    EXPECT_EQ(only_problem(edges + R"(
[calls.a]
connection = "feed"
[[calls.a.parties]]
connection = "host"
next_hop = "02:00:00:00:00:03"
[calls.b]
connection = "feed"
[[calls.b.parties]]
connection = "host"
next_hop = "02:00:00:00:00:03"
)"),
              "vcplane.toml:21: calls.b.connection: port connection 'feed' is the circuit of "
              "calls.a already (a port connection carries one call)");
}

TEST(config, combinations_that_cannot_work_are_refused_where_written) {
    // Label 3 pops; a call entering untagged has no label to pop.
    EXPECT_EQ(only_problem(edges + R"(
[calls.md]
connection = "feed"
[[calls.md.parties]]
connection = "core"
label = 3
next_hop = "02:00:00:00:00:01"
)"),
              "vcplane.toml:19: calls.md.parties[0].label: port to mpls: label 3 (implicit null) "
              "pops a label, but the call's ingress carries none");
    // A pseudowire's inner frames keep their own addresses.
    EXPECT_EQ(only_problem(edges + R"(
[calls.pw]
connection = "core"
label = 500
payload = "ethernet"
[[calls.pw.parties]]
connection = "host"
next_hop = "02:00:00:00:00:01"
)"),
              "vcplane.toml:21: calls.pw.parties[0].next_hop: the party's copies are the "
              "pseudowire's inner frames (decap), which keep their own addresses: leave it out");
    EXPECT_EQ(only_problem(edges + R"(
[calls.pw]
connection = "core"
label = 500
payload = "ethernet"
[[calls.pw.parties]]
connection = "core"
label = 3
)"),
              "vcplane.toml:21: calls.pw.parties[0].label: mpls to mpls: label 3 (implicit null) "
              "would hand a pseudowire's inner frame to an MPLS next hop: leave through a port "
              "or VLAN connection to decapsulate it");
    // Everything else a copy needs: a next hop; a control word belongs to a pseudowire.
    EXPECT_EQ(only_problem(edges + R"(
[calls.md]
connection = "feed"
[[calls.md.parties]]
connection = "access"
vid = 7
)"),
              "vcplane.toml:17: calls.md.parties[0].next_hop: missing (the MAC address of the "
              "next hop of the party's tag copies)");
    EXPECT_EQ(only_problem(edges + R"(
[calls.md]
connection = "feed"
control_word = true
[[calls.md.parties]]
connection = "host"
next_hop = "02:00:00:00:00:01"
)"),
              "vcplane.toml:17: calls.md.control_word: control_word is for payload = "
              "\"ethernet\" (a pseudowire)");
    EXPECT_THAT(only_problem(edges + R"(
[calls.md]
connection = "feed"
payload = "atm"
[[calls.md.parties]]
connection = "host"
next_hop = "02:00:00:00:00:01"
)"),
                HasSubstr("calls.md.payload: 'atm' is not a payload (expected \"ip\" or "
                          "\"ethernet\")"));
    EXPECT_THAT(only_problem(edges + R"(
[calls.md]
connection = "feed"
ttl = "short"
[[calls.md.parties]]
connection = "host"
next_hop = "02:00:00:00:00:01"
)"),
                HasSubstr("calls.md.ttl: 'short' is not a TTL model"));
}

TEST(config, a_pseudowire_egress_needs_no_next_hop) {
    const auto cfg = parse_config_string(edges + R"(
[calls.pw]
connection = "core"
label = 500
payload = "ethernet"
control_word = true
[[calls.pw.parties]]
connection = "host"
[[calls.pw.parties]]
connection = "access"
vid = 30
)",
                                         "vcplane.toml");
    ASSERT_EQ(cfg.calls.size(), 1u);
    EXPECT_EQ(cfg.calls[0].encap, (call_encapsulation{payload_kind::ethernet, true}));
    EXPECT_EQ(cfg.calls[0].parties[0].next_hop, mac_address{});
}

TEST(config, unknown_keys_and_wrong_types_are_named) {
    EXPECT_THAT(only_problem(base + "[metrics]\nlisten = \"127.0.0.1:9469\"\nport = 3\n"),
                HasSubstr("vcplane.toml:17: metrics.port: unknown key (expected one of: enabled, "
                          "listen, per_vc, per_party, max_series, forwarding_latency)"));
    std::string text = base;
    text.replace(text.find("mtu = 9000"), 10, "mtu = \"9000\"");
    EXPECT_THAT(only_problem(text),
                HasSubstr("connections.out.mtu: expected an integer, found a string"));
    EXPECT_THAT(only_problem(base + "[calls]\nx = 3\n"),
                HasSubstr("calls.x: expected a table, found an integer"));
}

TEST(config, syntax_errors_give_line_and_column) {
    EXPECT_THAT(only_problem("[eal\nlcores = [0, 1]\n"), HasSubstr("vcplane.toml:1:"));
    EXPECT_THAT(only_problem("[eal\nlcores = [0, 1]\n"), HasSubstr("syntax error"));
}

TEST(config, eal_needs_a_worker_and_memory_without_hugepages) {
    EXPECT_THAT(only_problem("[eal]\nlcores = [0]\n"),
                HasSubstr("eal.lcores: needs at least two lcores"));
    EXPECT_THAT(only_problem("[eal]\nlcores = [0, 1]\nno_huge = true\n"),
                HasSubstr("eal.memory_mb: missing"));
    EXPECT_THAT(only_problem("[eal]\nlcores = [0, 1, 1]\n"),
                HasSubstr("eal.lcores[2]: lcore 1 is listed twice"));
    EXPECT_THAT(only_problem(""), HasSubstr("eal: missing"));
}

TEST(config, traffic_contracts_are_read_and_checked) {
    std::string text = base + good_call;
    text.replace(text.find("label = 1000\n"), 13,
                 "label = 1000\nsustained_rate = 125_000\npeak_rate = 250_000\nburst = 3000\n");
    const auto cfg = parse_config_string(text, "vcplane.toml");
    EXPECT_EQ(cfg.calls[0].contract.sustained_rate, 125000u);
    EXPECT_EQ(cfg.calls[0].contract.peak_rate, 250000u);
    EXPECT_EQ(cfg.calls[0].contract.burst, 3000u);

    text = base + good_call;
    text.replace(text.find("label = 1000\n"), 13,
                 "label = 1000\nsustained_rate = 2000\npeak_rate = 1000\n");
    EXPECT_THAT(only_problem(text), HasSubstr("calls.feed-a.peak_rate: 1000 is below "
                                              "sustained_rate 2000 (peak >= sustained)"));
    text = base + good_call;
    text.replace(text.find("label = 1000\n"), 13, "label = 1000\nburst = 3000\n");
    EXPECT_THAT(only_problem(text), HasSubstr("calls.feed-a.burst: needs sustained_rate"));
    text = base + good_call;
    text.replace(text.find("label = 1000\n"), 13, "label = 1000\nsustained_rate = 0\n");
    EXPECT_THAT(only_problem(text), HasSubstr("calls.feed-a.sustained_rate: 0 is out of range"));
}

TEST(config, forwarding_latency_is_opt_in_and_a_boolean) {
    EXPECT_FALSE(parse_config_string(base + good_call, "vcplane.toml").metrics.forwarding_latency);
    EXPECT_TRUE(parse_config_string(base + good_call + "[metrics]\nforwarding_latency = true\n",
                                    "vcplane.toml")
                    .metrics.forwarding_latency);
    EXPECT_THAT(only_problem(base + good_call + "[metrics]\nforwarding_latency = \"on\"\n"),
                HasSubstr("metrics.forwarding_latency: expected true or false, found a string"));
}

// A client may always leave one whole batch's replies unread.
TEST(config, max_queued_replies_holds_at_least_one_batch) {
    EXPECT_EQ(parse_config_string(base + good_call + "[control]\nmax_queued_replies = 256\n",
                                  "vcplane.toml")
                  .control.max_queued_replies,
              256u);
    EXPECT_THAT(only_problem(base + good_call + "[control]\nmax_queued_replies = 16\n"),
                HasSubstr("control.max_queued_replies: 16"));
}

TEST(config, a_call_is_fair_only_when_it_says_so) {
    EXPECT_FALSE(parse_config_string(base + good_call, "vcplane.toml").calls[0].contract.fair);
    std::string text = base + good_call;
    text.replace(text.find("label = 1000\n"), 13, "label = 1000\nfair = true\n");
    EXPECT_TRUE(parse_config_string(text, "vcplane.toml").calls[0].contract.fair);
    text = base + good_call;
    text.replace(text.find("label = 1000\n"), 13, "label = 1000\nfair = 1\n");
    EXPECT_THAT(only_problem(text),
                HasSubstr("calls.feed-a.fair: expected true or false, found an integer"));
}

TEST(config, devargs_name_the_device_vcplane_probes_itself) {
    const auto cfg = parse_config_string(
        base + "[connections.probed]\ndevargs = \"net_null9,size=64\"\n", "vcplane.toml");
    const auto* c = cfg.find_connection("probed");
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->device, "net_null9");
    EXPECT_EQ(c->devargs, "net_null9,size=64");
    EXPECT_THAT(only_problem(base + "[connections.probed]\ndevargs = \"net_null9\"\n"
                                    "device = \"net_null8\"\n"),
                HasSubstr("connections.probed.devargs: names device 'net_null9' but device is "
                          "'net_null8'"));
    EXPECT_THAT(only_problem(base + "[connections.probed]\ndevargs = \",x=1\"\n"),
                HasSubstr("connections.probed.devargs: names no device"));
}

TEST(config, a_call_needs_parties) {
    EXPECT_THAT(only_problem(base + "[calls.c]\nconnection = \"in\"\nlabel = 100\n"),
                HasSubstr("calls.c.parties: missing (a call needs at least one party)"));
}

TEST(config, metrics_listen_must_be_address_and_port) {
    for (const char* bad : {"9469", "localhost:", ":9469", "127.0.0.1:99999", "x:y"}) {
        EXPECT_THAT(only_problem(base + "[metrics]\nlisten = \"" + bad + "\"\n"),
                    HasSubstr("metrics.listen"))
            << bad;
    }
}

TEST(config, per_object_series_are_opt_in_and_capped) {
    const auto off = parse_config_string(base, "vcplane.toml");
    EXPECT_FALSE(off.metrics.per_vc);
    EXPECT_FALSE(off.metrics.per_party);
    EXPECT_EQ(off.metrics.max_series, 10000u);
    const auto on = parse_config_string(
        base + "[metrics]\nper_vc = true\nper_party = true\nmax_series = 0\n", "vcplane.toml");
    EXPECT_TRUE(on.metrics.per_vc);
    EXPECT_TRUE(on.metrics.per_party);
    EXPECT_EQ(on.metrics.max_series, 0u);
    EXPECT_THAT(only_problem(base + "[metrics]\nmax_series = 1048577\n"),
                HasSubstr("vcplane.toml:16: metrics.max_series: 1048577 is out of range "
                          "(0..1048576)"));
    EXPECT_THAT(only_problem(base + "[metrics]\nmax_series = -1\n"),
                HasSubstr("metrics.max_series: -1 is out of range"));
    EXPECT_THAT(only_problem(base + "[metrics]\nper_vc = 1\n"),
                HasSubstr("metrics.per_vc: expected true or false, found an integer"));
}

TEST(config, every_problem_of_a_file_is_reported_at_once) {
    std::string text = base + good_call;
    text.replace(text.find("label = 2002"), 12, "label = 7");
    text.replace(text.find("02:00:5e:10:00:01"), 17, "zz");
    try {
        parse_config_string(text, "f.toml");
        FAIL() << "no error";
    } catch (const config_error& e) {
        EXPECT_EQ(e.problems().size(), 2u);
    }
}

TEST(config, files_missing_or_too_large_are_refused_without_parsing) {
    EXPECT_THROW(parse_config_file("/nonexistent/vcplane.toml"), config_error);
    const std::string path = testing::TempDir() + "/huge.toml";
    {
        std::ofstream f(path);
        f << "# " << std::string(max_config_bytes, 'x') << "\n";
    }
    try {
        parse_config_file(path);
        FAIL() << "no error";
    } catch (const config_error& e) {
        EXPECT_THAT(e.what(), HasSubstr("too large for a config file"));
    }
    std::remove(path.c_str());
}

TEST(config, garbage_never_crashes_the_parser) {
    // Every prefix of a valid file, and byte flips of it: an error or a config, never a crash.
    const std::string text = base + good_call;
    for (size_t n = 0; n < text.size(); n += 7) {
        try {
            parse_config_string(text.substr(0, n), "cut.toml");
        } catch (const config_error&) {
        }
    }
    for (size_t i = 0; i < text.size(); i += 3) {
        std::string bad = text;
        bad[i] = char(bad[i] ^ 0x5a);
        try {
            parse_config_string(bad, "flip.toml");
        } catch (const config_error&) {
        }
    }
}

// Mutation fuzzing with a TOML-aware dictionary (seeded, so a failure reproduces): every input
// either parses into a config that the reload planner can compare with the original, or is
// refused with config_error. Any other exception, a crash or a sanitizer report fails.
TEST(config, fuzzed_files_are_refused_cleanly_or_accepted_whole) {
    const std::string text = base + good_call + R"(
[calls.other]
connection = "in"
label = 1001
sustained_rate = 125000
peak_rate = 250000
[[calls.other.parties]]
connection = "out"
label = 3000
next_hop = "02:00:5e:10:00:03"
[metrics]
listen = "127.0.0.1:9469"
[control]
socket = "/run/vcplane/control.sock"
mode = "0660"
allowed_users = ["root"]
)";
    const vcplane_config original = parse_config_string(text, "fuzz.toml");
    const std::vector<std::string> tokens = {"[",
                                             "]",
                                             "[[",
                                             "]]",
                                             "{",
                                             "}",
                                             "=",
                                             "\"",
                                             "'",
                                             "\"\"\"",
                                             ",",
                                             ".",
                                             "\n",
                                             "#",
                                             "\\",
                                             "\\u0000",
                                             "0x",
                                             "-",
                                             "+",
                                             "inf",
                                             "nan",
                                             "1e400",
                                             "99999999999999999999",
                                             "-1",
                                             "1048576",
                                             "4095",
                                             "true",
                                             "[calls.feed-a]",
                                             "[connections.in]",
                                             "label",
                                             "vid",
                                             "parties",
                                             "connection",
                                             "next_hop",
                                             "sustained_rate",
                                             "\xff\xfe",
                                             "\xc3\x28",
                                             "1979-05-27T07:32:00Z",
                                             "[[calls.feed-a.parties]]",
                                             "= [[[[[[",
                                             "a.b.c.d = 1"};
    uint64_t state = 0x9e3779b97f4a7c15ull;
    const auto next = [&state](uint64_t bound) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        return state % bound;
    };
    size_t accepted = 0, refused = 0;
    for (int round = 0; round < 20000; ++round) {
        std::string t = text;
        const int edits = 1 + int(next(4));
        for (int e = 0; e < edits && !t.empty(); ++e) {
            const size_t at = next(t.size());
            switch (next(5)) {
            case 0: t[at] = char(next(256)); break;
            case 1: t.erase(at, 1 + next(16)); break;
            case 2: t.insert(at, tokens[next(tokens.size())]); break;
            case 3:
                t.resize(at); // truncated
                break;
            default: { // a line duplicated elsewhere
                const size_t from = t.rfind('\n', at);
                const size_t to = t.find('\n', at);
                const size_t b = from == std::string::npos ? 0 : from;
                t.insert(next(t.size() + 1),
                         t.substr(b, to == std::string::npos ? t.npos : to - b));
                break;
            }
            }
        }
        try {
            const vcplane_config c = parse_config_string(t, "fuzz.toml");
            (void)diff_configs(original, c);
            ++accepted;
        } catch (const config_error& e) {
            ASSERT_FALSE(e.problems().empty());
            ++refused;
        }
    }
    // The mutations must exercise both outcomes, or the test proves nothing.
    EXPECT_GT(accepted, 100u);
    EXPECT_GT(refused, 10000u);

    // Hostile shapes: deep nesting, a huge string, a huge table count, a NUL byte.
    for (const std::string& hostile :
         {std::string("a = ") + std::string(100000, '[') + std::string(100000, ']'),
          std::string("a = {") + std::string(50000, '{'),
          base + "[calls.x]\nconnection = \"" + std::string(1 << 20, 'x') + "\"\n",
          base + std::string("\0", 1) + good_call}) {
        EXPECT_THROW(parse_config_string(hostile, "hostile.toml"), config_error);
    }
    std::string many = base;
    for (int i = 0; i < 5000; ++i) {
        many += fmt::format("[calls.c{0}]\nconnection = \"in\"\nlabel = {1}\n"
                            "[[calls.c{0}.parties]]\nconnection = \"out\"\nlabel = {1}\n"
                            "next_hop = \"02:00:00:00:00:01\"\n",
                            i, 16 + i);
    }
    EXPECT_EQ(parse_config_string(many, "many.toml").calls.size(), 5000u);
}

TEST(config, an_overbooked_connection_is_refused_naming_the_calls) {
    const std::string text = base + R"(
[connections.thin]
device = "net_null2"
bandwidth_bps = 8_000_000
[calls.a]
connection = "in"
label = 1000
sustained_rate = 600_000
[[calls.a.parties]]
connection = "thin"
label = 2000
next_hop = "02:00:00:00:00:01"
[calls.b]
connection = "in"
label = 1001
sustained_rate = 600_000
[[calls.b.parties]]
name = "far"
connection = "thin"
label = 2001
next_hop = "02:00:00:00:00:01"
)";
    EXPECT_EQ(only_problem(text),
              "vcplane.toml:18: connections.thin.bandwidth_bps: 8000000 bit/s is overbooked: "
              "parties leaving through it book 9600000 bit/s (sustained_rate x 8 of a.party0, "
              "b.far)");
}

TEST(config, services_are_read_and_checked) {
    const auto cfg = parse_config_string(base + R"(
[services.ntp]
addresses = ["10.0.0.1", "10.0.0.2"]
comment = "time"
[services.dns]
addresses = []
)",
                                         "vcplane.toml");
    ASSERT_EQ(cfg.services.size(), 2u);
    EXPECT_EQ(cfg.services[1].name, "ntp");
    EXPECT_EQ(cfg.services[1].addresses, (std::vector<std::string>{"10.0.0.1", "10.0.0.2"}));
    EXPECT_EQ(cfg.services[1].comment, "time");
    EXPECT_THAT(only_problem(base + "[services.ntp]\naddresses = \"10.0.0.1\"\n"),
                HasSubstr("vcplane.toml:16: services.ntp.addresses: expected an array of strings"));
    EXPECT_THAT(only_problem(base + "[services.ntp]\nport = 123\n"),
                HasSubstr("services.ntp.port: unknown key"));
    EXPECT_THAT(only_problem(base + "[services]\n\"a b\" = {}\n"),
                HasSubstr("a service name is 1..63 letters"));
}

TEST(mac, parse_and_format_round_trip) {
    const auto m = parse_mac("02:AB:cd:00:10:ff");
    ASSERT_TRUE(m);
    EXPECT_EQ(format_mac(*m), "02:ab:cd:00:10:ff");
    EXPECT_FALSE(parse_mac("02:ab:cd:00:10"));
    EXPECT_FALSE(parse_mac("02:ab:cd:00:10:ff:00"));
    EXPECT_FALSE(parse_mac("02:ab:cd:00:10:f "));
}

} // namespace
} // namespace vcplane
