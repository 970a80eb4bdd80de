#include "daemon/request_handlers.hh"

#include <stdexcept>

namespace vcplane {

const handler_entry* find_handler(std::string_view op) {
    static const std::map<std::string_view, const handler_entry*> table = [] {
        std::map<std::string_view, const handler_entry*> t;
        for (const auto* family :
             {&nsp_handlers(), &ndis_handlers(), &cm_handlers(), &switch_handlers()}) {
            for (const auto& e : *family) {
                if (!t.emplace(e.op, &e).second) {
                    throw std::logic_error(std::string("two handlers for ") + e.op);
                }
            }
        }
        return t;
    }();
    auto it = table.find(op);
    return it == table.end() ? nullptr : it->second;
}

} // namespace vcplane
