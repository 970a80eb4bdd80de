// daemon/protocol: a reply's text is the object nlohmann::json would write for the same
// members, byte for byte (keys sorted), so that clients see one format whichever way a reply
// was made.
#include "daemon/protocol.hh"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <stdexcept>

using namespace vcplane;
using namespace vcplane::protocol;
using nlohmann::json;

namespace {

// What the same reply was written as by a JSON tree.
std::string as_tree(const char* family, const char* status, int64_t code, const std::string& msg,
                    json id, const json& members) {
    json j = members.is_null() ? json::object() : members;
    j["family"] = family;
    j["status"] = status;
    j["code"] = code;
    j["message"] = msg;
    j["id"] = id;
    return j.dump();
}

} // namespace

TEST(reply, a_status_alone_is_written_as_the_tree_would_write_it) {
    const reply r = ndis_reply(callmgmt::status::success);
    const char* name = callmgmt::status_name(callmgmt::status::success);
    EXPECT_EQ(r.text(7), as_tree("ndis", name, 0, "", 7, json()));
    EXPECT_EQ(r.text(std::nullopt), as_tree("ndis", name, 0, "", nullptr, json()));
    EXPECT_EQ(r.family(), "ndis");
    EXPECT_EQ(r.status(), name);
}

TEST(reply, members_fall_between_the_status_keys_in_sorted_order) {
    reply r = wsa_reply(nsp::wsa::no_error);
    // Before "code", between "id" and "message", after "status", and nested values.
    r["zone"] = "z";
    r["lookup"] = 42u;
    r["abc"] = -3;
    r["calls"] = json::array({json{{"vc", 1}, {"name", "a\"b"}}});
    r["dry_run"] = true;
    r["rate"] = 2.5;
    r["lookup"] = 43u; // assigned again: replaced, not repeated
    const json members{{"zone", "z"}, {"lookup", 43u},
                       {"abc", -3},   {"dry_run", true},
                       {"rate", 2.5}, {"calls", json::array({json{{"vc", 1}, {"name", "a\"b"}}})}};
    EXPECT_EQ(r.text(1u << 31),
              as_tree("nsp", nsp::wsa_name(nsp::wsa::no_error), 0, "", 1u << 31, members));
    ASSERT_NE(r.find("lookup"), nullptr);
    EXPECT_EQ(*r.find("lookup"), 43u);
    EXPECT_EQ(r.find("party"), nullptr);
}

TEST(reply, a_message_is_escaped_as_json) {
    reply r = cm_reply(cm::result::invalid_parameter, "no \"x\"\nhere \\ \x01 é");
    const std::string t = r.text(3);
    EXPECT_EQ(t, as_tree("cm", cm::result_name(cm::result::invalid_parameter),
                         int64_t(uint32_t(cm::result::invalid_parameter)),
                         "no \"x\"\nhere \\ \x01 é", 3, json()));
    EXPECT_EQ(json::parse(t)["message"], "no \"x\"\nhere \\ \x01 é");
    r.set_message("replaced");
    EXPECT_EQ(json::parse(r.text(3))["message"], "replaced");
}

TEST(reply, the_status_keys_are_not_members) {
    reply r = wsa_reply(nsp::wsa::invalid, "bad");
    for (const char* k : {"id", "family", "status", "code", "message"}) {
        EXPECT_THROW(r[k], std::logic_error) << k;
    }
    EXPECT_EQ(r.text(1), as_tree("nsp", nsp::wsa_name(nsp::wsa::invalid),
                                 int64_t(nsp::wsa::invalid), "bad", 1, json()));
}

TEST(reply, one_read_from_an_object_keeps_every_member_and_survives_a_move) {
    const json object{
        {"family", "config"}, {"status", "PARTIAL"},
        {"code", 1},          {"message", "1 of 2 step(s) failed"},
        {"dry_run", false},   {"steps", json::array({json{{"op", "add_party"}, {"status", "x"}}})}};
    reply r(object);
    reply moved(std::move(r)); // family and status point into what moved with it
    json expected = object;
    expected["id"] = 9;
    EXPECT_EQ(moved.text(9), expected.dump());
    EXPECT_EQ(moved.status(), "PARTIAL");
}

TEST(reply, an_object_without_the_status_is_refused) {
    EXPECT_THROW(reply(json{{"family", "config"}, {"status", "SUCCESS"}, {"message", ""}}),
                 std::invalid_argument); // no code
    EXPECT_THROW(reply(json{{"status", "SUCCESS"}, {"code", 0}, {"message", ""}}),
                 std::invalid_argument);
    EXPECT_THROW(reply(json{{"family", "config"}, {"status", 5}, {"code", 0}, {"message", ""}}),
                 std::invalid_argument);
    EXPECT_THROW(reply(json::array()), std::invalid_argument);
}
