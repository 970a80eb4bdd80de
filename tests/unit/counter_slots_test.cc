#include "dataplane/counter_slots.hh"

#include <gtest/gtest.h>

namespace vcplane {
namespace {

TEST(counter_slots, hands_out_own_slots_then_the_remainder_and_reuses_released_ones_zeroed) {
    counter_slots slots(2, true, 2);
    EXPECT_TRUE(slots.counting());
    ASSERT_NE(slots.worker_array(0), nullptr);
    ASSERT_NE(slots.worker_array(1), slots.worker_array(0));
    const uint32_t a = slots.acquire(), b = slots.acquire();
    EXPECT_NE(a, counter_slots::remainder);
    EXPECT_NE(b, counter_slots::remainder);
    EXPECT_NE(a, b);
    EXPECT_EQ(slots.acquire(), counter_slots::remainder); // only two of its own
    EXPECT_EQ(slots.in_use(), 2u);
    EXPECT_EQ(slots.in_remainder(), 1u);
    EXPECT_EQ(slots.suppressed_total(), 1u);

    // A read sums the workers.
    slots.worker_array(0)[a].packets.add(3);
    slots.worker_array(1)[a].packets.add(4);
    slots.worker_array(1)[a].bytes.add(400);
    slots.worker_array(0)[a].drops.add(1);
    const slot_totals t = slots.read(a);
    EXPECT_EQ(t.packets, 7u);
    EXPECT_EQ(t.bytes, 400u);
    EXPECT_EQ(t.drops, 1u);
    slots.worker_array(0)[counter_slots::remainder].packets.add(9);

    slots.release(a);
    EXPECT_EQ(slots.in_use(), 1u);
    EXPECT_EQ(slots.read(a).packets, 0u);
    EXPECT_EQ(slots.acquire(), a); // a released slot comes back before the remainder

    // Leaving the remainder lowers the gauge, never the remainder's count or the total.
    slots.release(counter_slots::remainder);
    EXPECT_EQ(slots.in_remainder(), 0u);
    EXPECT_EQ(slots.suppressed_total(), 1u);
    EXPECT_EQ(slots.read(counter_slots::remainder).packets, 9u);
}

TEST(counter_slots, off_means_no_arrays_and_nothing_suppressed) {
    counter_slots slots(4, false, 1000);
    EXPECT_FALSE(slots.counting());
    EXPECT_EQ(slots.worker_array(0), nullptr);
    EXPECT_EQ(slots.acquire(), counter_slots::remainder);
    EXPECT_EQ(slots.in_remainder(), 0u);
    EXPECT_EQ(slots.suppressed_total(), 0u);
    slots.release(counter_slots::remainder);
    EXPECT_EQ(slots.in_remainder(), 0u);
}

TEST(counter_slots, zero_own_slots_counts_everything_in_the_remainder) {
    counter_slots slots(1, true, 0);
    EXPECT_TRUE(slots.counting());
    EXPECT_EQ(slots.acquire(), counter_slots::remainder);
    EXPECT_EQ(slots.in_remainder(), 1u);
}

} // namespace
} // namespace vcplane
