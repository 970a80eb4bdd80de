#pragma once
// Outcomes of contract operations, by family (ndis: call management, nsp: sessions and names,
// cm: connection manager, nmr: module registrar), operation and status, for the metrics
// (vcplane_contract_operations_total). Counted where each family's operations complete:
// call managers, the NMR registrar, the control server. Control thread only; the scrape sees a
// copy in the status snapshot.

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <tuple>

namespace vcplane {

class contract_stats {
public:
    contract_stats() = default;
    // Not copied: the cache points into this object's own table (copy all() instead).
    contract_stats(const contract_stats&) = delete;
    contract_stats& operator=(const contract_stats&) = delete;

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

    // Every contract operation counts one outcome, so the common case is short: the outcome
    // counted last from the same three strings (callers pass literals and names from static
    // tables) is found in a small cache by their addresses, and taken only when its key
    // reads the same (a caller's buffer may hold other text by now). Otherwise the table is
    // searched, and a key's strings are made the first time its outcome is seen.
    void count(std::string_view family, std::string_view operation, std::string_view status) {
        recent& r = recent_[recent_index(family, operation, status)];
        if (r.counter == nullptr || key_order::as_view(*r.k) != view{family, operation, status})
            [[unlikely]] {
            r = find_or_add(family, operation, status);
        }
        ++*r.counter;
    }
    const table& all() const { return counts_; }

    // The process's counters (one control thread per process).
    static contract_stats& process();

private:
    struct recent {
        const key* k = nullptr;      // a key of counts_ (map nodes never move)
        uint64_t* counter = nullptr; // its count
    };
    static constexpr size_t recent_size = 64;
    static_assert(recent_size == size_t(1) << (64 - 58));
    static size_t recent_index(std::string_view f, std::string_view o, std::string_view s) {
        const auto a = [](std::string_view v) { return reinterpret_cast<uintptr_t>(v.data()); };
        const uint64_t k = 0x9e3779b97f4a7c15ull; // odd: the top bits mix every address's bits
        return size_t((((a(f) * k + a(o)) * k + a(s)) * k) >> 58); // 6 bits: recent_size
    }
    recent find_or_add(std::string_view family, std::string_view operation,
                       std::string_view status);

    table counts_;
    std::array<recent, recent_size> recent_{};
};

} // namespace vcplane
