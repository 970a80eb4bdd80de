#pragma once
// Outcomes of contract operations, by family (ndis: call management, nsp: sessions and names,
// cm: connection manager, nmr: module registrar), operation and status, for the metrics
// (vcplane_contract_operations_total). Counted where each family's operations complete:
// call managers, the NMR registrar, the control server. Control thread only; the scrape sees a
// copy in the status snapshot.

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <tuple>

namespace vcplane {

class contract_stats {
public:
    using key = std::tuple<std::string, std::string, std::string>; // family, operation, status
    using table = std::map<key, uint64_t, std::less<>>;
    // Found without building the key's strings (every contract operation counts one): they
    // are made only the first time an outcome is seen.
    void count(std::string_view family, std::string_view operation, std::string_view status) {
        const std::tuple<std::string_view, std::string_view, std::string_view> k{family, operation,
                                                                                 status};
        auto it = counts_.find(k);
        if (it == counts_.end()) {
            it = counts_.emplace(key{family, operation, status}, 0).first;
        }
        ++it->second;
    }
    const table& all() const { return counts_; }

    // The process's counters (one control thread per process).
    static contract_stats& process();

private:
    table counts_;
};

} // namespace vcplane
