#include "base/contract_stats.hh"

namespace vcplane {

contract_stats::recent contract_stats::find_or_add(std::string_view family,
                                                   std::string_view operation,
                                                   std::string_view status) {
    auto it = counts_.find(view{family, operation, status});
    if (it == counts_.end()) {
        it = counts_.emplace(key{family, operation, status}, 0).first;
    }
    return {&it->first, &it->second};
}

contract_stats& contract_stats::process() {
    static contract_stats stats;
    return stats;
}

} // namespace vcplane
