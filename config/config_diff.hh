#pragma once
// What a reload would change: the difference between the configuration a switch runs and a
// new file, as the contract operations that turn one into the other (docs/design.md §5, issue 6).
//
// Only calls and their parties change live. Everything else a file says (EAL, connections and
// their ports, queues, MTU, the metrics and control endpoints) is fixed when the switch starts;
// a difference there is listed in restart_required and never applied.
//
// The operations, in the order a reload applies them:
//   close_call     the call is gone from the file, or its ingress connection or key changed
//                  (then make_call follows: the call is made again under its new identity)
//   drop_party     the party is gone, or it changed (then add_party follows with the new one)
//   modify_qos     the call's traffic contract changed (applied in place, no frame lost)
//   add_party      the party is new, or the new version of a changed one
//   make_call      the call is new, or made again
//   delete_service a [services] entry is gone
//   set_service    a [services] entry is new or changed (registered again, overwriting)
// A party that changes while it is its call's only party in both files cannot be dropped (a
// call keeps at least one party): the call is closed and made again instead.
//
// Pure functions: no DPDK, no state. The provisioner turns a plan into contract calls.

#include <string>
#include <vector>

#include "config/config.hh"
#include "vocab/enum_names.hh"

namespace vcplane {

enum class reload_op {
    close_call,
    drop_party,
    modify_qos,
    add_party,
    make_call,
    delete_service,
    set_service
};
inline bool is_call_op(reload_op op) {
    return op != reload_op::delete_service && op != reload_op::set_service;
}
const char* reload_op_name(reload_op op);

struct reload_step {
    reload_op op;
    std::string call;
    std::string party;        // drop_party, add_party
    std::string why;          // e.g. "new", "removed", "label 1000 -> 1001"
    std::string text() const; // one line for logs and replies
};

struct reload_plan {
    std::vector<std::string> restart_required; // one line per difference, never applied
    std::vector<reload_step> steps;            // in the order to apply them
    std::vector<std::string> unchanged;        // calls left alone
    bool empty() const { return restart_required.empty() && steps.empty(); }
};

reload_plan diff_configs(const vcplane_config& running, const vcplane_config& next);

// Whether two parties of the same name are the same party (a difference is a changed party:
// dropped and added again).
bool same_party(const party_spec& a, const party_spec& b);

} // namespace vcplane

// Their names (vocab/enum_names.hh).
namespace vcplane {

template <>
struct enum_names<reload_op> {
    static constexpr named<reload_op> list[] = {
        {reload_op::close_call, "close_call"},  {reload_op::drop_party, "drop_party"},
        {reload_op::modify_qos, "modify_qos"},  {reload_op::add_party, "add_party"},
        {reload_op::make_call, "make_call"},    {reload_op::delete_service, "delete_service"},
        {reload_op::set_service, "set_service"}};
};

} // namespace vcplane
