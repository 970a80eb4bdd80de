#include "base/contract_stats.hh"

namespace vcplane {

contract_stats& contract_stats::process() {
    static contract_stats stats;
    return stats;
}

} // namespace vcplane
