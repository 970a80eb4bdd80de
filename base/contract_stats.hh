#pragma once
// Outcomes of contract operations, by family (ndis: call management, nsp: sessions and names,
// cm: connection manager, nmr: module registrar), operation and status, for the metrics
// (vcplane_contract_operations_total). Counted where each family's operations complete:
// call managers, the NMR registrar, the control server. Control thread only; the scrape sees a
// copy in the status snapshot.

#include <cstdint>
#include <map>
#include <string>
#include <tuple>

namespace vcplane {

class contract_stats {
public:
    using key = std::tuple<std::string, std::string, std::string>; // family, operation, status
    void count(const std::string& family, const std::string& operation, const std::string& status) {
        ++counts_[key{family, operation, status}];
    }
    const std::map<key, uint64_t>& all() const { return counts_; }

    // The process's counters (one control thread per process).
    static contract_stats& process();

private:
    std::map<key, uint64_t> counts_;
};

} // namespace vcplane
