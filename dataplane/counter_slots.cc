// Slot bookkeeping: control thread only (allocation is allowed here).
#include "dataplane/counter_slots.hh"

namespace vcplane {

counter_slots::counter_slots(unsigned workers, bool counting, uint32_t own_slots)
    : own_slots_(counting ? own_slots : 0) {
    if (!counting) {
        return;
    }
    for (unsigned w = 0; w < workers; ++w) {
        // Value-initialised: every counter starts at 0.
        arrays_.push_back(std::make_unique<slot_counters[]>(size_t(own_slots) + 1));
    }
}

uint32_t counter_slots::acquire() noexcept {
    if (!counting()) {
        return remainder; // not counted anywhere, so not suppressed either
    }
    uint32_t slot = remainder;
    if (!free_.empty()) {
        slot = free_.back();
        free_.pop_back();
    } else if (next_unused_ <= own_slots_) {
        slot = next_unused_++;
    }
    if (slot == remainder) {
        ++in_remainder_;
        ++suppressed_total_;
    } else {
        ++in_use_;
    }
    return slot;
}

void counter_slots::release(uint32_t slot) noexcept {
    if (!counting()) {
        return;
    }
    if (slot == remainder) {
        --in_remainder_;
        return;
    }
    for (auto& a : arrays_) {
        a[slot] = slot_counters{};
    }
    free_.push_back(slot);
    --in_use_;
}

slot_totals counter_slots::read(uint32_t slot) const noexcept {
    slot_totals t;
    for (const auto& a : arrays_) {
        t.packets += a[slot].packets.read();
        t.bytes += a[slot].bytes.read();
        t.drops += a[slot].drops.read();
    }
    return t;
}

} // namespace vcplane
