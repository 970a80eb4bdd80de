#pragma once
// Outcomes of contract operations, by family (ndis: call management, nsp: sessions and names,
// cm: connection manager, nmr: module registrar), operation and status, for the metrics
// (vcplane_contract_operations_total). Counted where each family's operations complete:
// call managers, the NMR registrar, the control server. Control thread only; the scrape sees a
// copy in the status snapshot.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <tuple>

namespace vcplane {

class contract_stats {
public:
    using key = std::tuple<std::string, std::string, std::string>; // family, operation, status
    using view = std::tuple<std::string_view, std::string_view, std::string_view>;
    // Orders keys and views of keys alike, so that a view finds its key.
    struct key_order {
        using is_transparent = void;
        template <typename A, typename B>
        bool operator()(const A& a, const B& b) const {
            return as_view(a) < as_view(b);
        }
        static view as_view(const key& k) {
            return {std::get<0>(k), std::get<1>(k), std::get<2>(k)};
        }
        static const view& as_view(const view& v) { return v; }
    };
    using table = std::map<key, uint64_t, key_order>;
    // Found without building the key's strings (every contract operation counts one): they
    // are made only the first time an outcome is seen.
    void count(std::string_view family, std::string_view operation, std::string_view status) {
        auto it = counts_.find(view{family, operation, status});
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
