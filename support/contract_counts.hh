#pragma once
// What the contract counters (base/contract_stats.hh) counted, read the way the status-table
// tests compare them with a family's table: operation -> the statuses it returned.

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>

#include "base/contract_stats.hh"

namespace vcplane::test {

using counted_outcomes = std::map<std::pair<std::string, std::string>, uint64_t>;
using statuses_by_operation = std::map<std::string, std::set<std::string>>;

// What was counted for one family since `before` (a copy of contract_stats::process().all()).
inline counted_outcomes counted_since(const contract_stats::table& before,
                                      const std::string& family) {
    counted_outcomes out;
    for (const auto& [k, n] : contract_stats::process().all()) {
        auto it = before.find(k);
        const uint64_t was = it == before.end() ? 0 : it->second;
        if (std::get<0>(k) == family && n > was) {
            out[{std::get<1>(k), std::get<2>(k)}] = n - was;
        }
    }
    return out;
}

inline statuses_by_operation by_operation(const counted_outcomes& counted) {
    statuses_by_operation out;
    for (const auto& [k, n] : counted) {
        out[k.first].insert(k.second);
    }
    return out;
}

// A family's table (entries with .operation and .statuses), by status name.
template <class Table, class Name>
statuses_by_operation listed_statuses(const Table& table, Name status_name) {
    statuses_by_operation out;
    for (const auto& op : table) {
        for (auto st : op.statuses) {
            out[op.operation].insert(status_name(st));
        }
    }
    return out;
}

// Everything this process ever counted for the family that its table does not list, as
// "operation returned STATUS" lines: empty when the table is the truth.
inline std::set<std::string> unlisted_outcomes(const statuses_by_operation& listed,
                                               const std::string& family) {
    std::set<std::string> out;
    for (const auto& [k, n] : contract_stats::process().all()) {
        if (std::get<0>(k) != family) {
            continue;
        }
        auto it = listed.find(std::get<1>(k));
        if (it == listed.end() || it->second.count(std::get<2>(k)) == 0) {
            out.insert(std::get<1>(k) + " returned " + std::get<2>(k));
        }
    }
    return out;
}

} // namespace vcplane::test
