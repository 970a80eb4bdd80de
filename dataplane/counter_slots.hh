#pragma once
// Per-object traffic counters (one VC, one party) in numbered slots.
//
// Each worker has its own array of slots and is the only writer of it (an increment is a
// relaxed load and store, dataplane/counters.hh); a reader sums one slot over all workers.
// An object that the workers count (vc::stats_slot, party::stats_slot) names its slot.
//
// Slot 0 is the remainder: it is never handed out and counts every object that could not get
// a slot of its own (more objects than slots). A slot's life, all on the control thread:
//
//   acquire()  -> named by a published object -> object unpublished -> grace period
//     -> no reader lists it any more (the metrics snapshot is rebuilt) -> release()
//
// release() zeroes the slot, so the next object to acquire it starts at 0. Releasing only
// after a grace period means no worker still adds to it; releasing only after the snapshot
// no longer lists the old object means no scrape ever shows the old object's series with
// the new object's (smaller) count, so a series never goes backwards.

#include <cstdint>
#include <memory>
#include <vector>

#include "dataplane/counters.hh"

namespace vcplane {

struct alignas(32) slot_counters {
    counter packets; // frames (for a VC: classified to it; for a party: copies sent to it)
    counter bytes;   // their Ethernet bytes without FCS
    counter drops;   // frames or copies lost after classification (see worker.hh)
    uint64_t unused_ = 0;
};

struct slot_totals {
    uint64_t packets = 0, bytes = 0, drops = 0;
};

// One worker's view of its per-VC and per-party arrays (counter_slots::worker_array), as the
// worker path counts into them: a null array is not counted. A VC's slot counts the frames
// classified to it and its drops after classification (TTL expired, policed, no buffer for a
// copy); a party's slot counts the copies handed to its port and the copies it lost for want
// of a buffer. Copies a full TX queue refuses are counted per port, not per party.
struct object_counters {
    slot_counters* vcs = nullptr;
    slot_counters* parties = nullptr;

    bool on() const noexcept { return vcs != nullptr || parties != nullptr; }
    void vc_frame(uint32_t slot, uint64_t bytes) const noexcept { count(vcs, slot, bytes); }
    void party_copy(uint32_t slot, uint64_t bytes) const noexcept { count(parties, slot, bytes); }
    void vc_drop(uint32_t slot) const noexcept { lose(vcs, slot); }
    void party_drop(uint32_t slot) const noexcept { lose(parties, slot); }

private:
    static void count(slot_counters* array, uint32_t slot, uint64_t bytes) noexcept {
        if (array != nullptr) {
            array[slot].packets.add(1);
            array[slot].bytes.add(bytes);
        }
    }
    static void lose(slot_counters* array, uint32_t slot) noexcept {
        if (array != nullptr) {
            array[slot].drops.add(1);
        }
    }
};

class counter_slots {
public:
    // counting == false: no arrays at all (workers count nothing, acquire() always gives the
    // remainder). Otherwise own_slots slots plus the remainder, for each of `workers`.
    counter_slots(unsigned workers, bool counting, uint32_t own_slots);
    counter_slots(const counter_slots&) = delete;
    counter_slots& operator=(const counter_slots&) = delete;

    bool counting() const noexcept { return !arrays_.empty(); }
    // A worker's array (index by slot number), or nullptr when not counting. Before launch.
    slot_counters* worker_array(unsigned worker) const noexcept {
        return counting() ? arrays_[worker].get() : nullptr;
    }

    // Control thread.
    static constexpr uint32_t remainder = 0;
    uint32_t acquire() noexcept;          // `remainder` when every slot is taken
    void release(uint32_t slot) noexcept; // see above for when; the remainder is never zeroed
    uint32_t in_use() const noexcept { return in_use_; }
    // Objects counted in the remainder now, and ever (acquire() gave them no slot).
    uint64_t in_remainder() const noexcept { return in_remainder_; }
    uint64_t suppressed_total() const noexcept { return suppressed_total_; }

    // Any thread: one slot summed over the workers.
    slot_totals read(uint32_t slot) const noexcept;

private:
    std::vector<std::unique_ptr<slot_counters[]>> arrays_;
    uint32_t own_slots_;
    uint32_t next_unused_ = 1;   // slots never handed out start here
    std::vector<uint32_t> free_; // released slots, reused before unused ones
    uint32_t in_use_ = 0;
    uint64_t in_remainder_ = 0;
    uint64_t suppressed_total_ = 0;
};

} // namespace vcplane
