#pragma once
// How vcplane uses RCU (liburcu, QSBR flavour) — read this before touching a shared table.
//
// Who reads, who writes
//   Worker lcores are QSBR readers. They register once (rcu_register_thread), then read the
//   forwarding tables with rcu_load() (below) and, between bursts, announce a quiescent state
//   (rcu_quiescent_state). Between two quiescent states a worker may hold any pointer it
//   loaded from a table; after one, it holds none. There are no read-side lock/unlock pairs
//   on the worker path: QSBR makes the read side free.
//
//   The control thread is the only writer. It never changes an object that a worker can see.
//   It builds a new immutable object off to the side (a party array, a VC, a connection
//   entry), publishes it with one rcu_assign_pointer() into the slot the workers read, and
//   retires the object it replaced.
//
// When something can be freed
//   A retired object may still be in use by a worker until every worker has passed a
//   quiescent state after the unpublish: one grace period. Only then is it freed. Grace
//   periods are batched: many retirements share one grace period; the control thread never
//   calls synchronize_rcu() per operation. (Objects of a table that no worker can reach any
//   more — e.g. at shutdown after the workers left — are freed directly.) Storage the tables
//   reuse themselves follows the same rule: a vc's room in its index slot (dataplane/tables.hh)
//   takes a new vc only once the one before it has been freed.
//
// What a worker must not do
//   Hold a table pointer across a quiescent state; write to a published object; block, lock,
//   allocate from the heap, log or make a system call. Mbufs it transmits never point into a
//   table object (each copy's header is written from the party data), so retiring a party
//   needs no wait for TX completion.
//
// Known cost of the liburcu QSBR flavour: when a grace-period waiter has fallen asleep on its
//   futex, the next rcu_quiescent_state() of a reader wakes it (one futex syscall per grace
//   period, not per packet). This is liburcu's design; we accept it and keep grace periods
//   rare by batching.

// Inlined read side: the build defines _LGPL_SOURCE for every file (meson.build), so that
//   rcu_quiescent_state() is a few loads and a store in the worker's code, not a call into
//   liburcu through the PLT. liburcu is LGPL-2.1; its read-side inlines are the small
//   functions its README allows non-LGPL code to inline. Published pointers are read with
//   rcu_load(), not liburcu's rcu_dereference(): its inline form cannot take the const
//   lvalues a const table gives in C++, and its library form is a call per load, on the
//   worker path.
#ifndef _LGPL_SOURCE
#error "build with -D_LGPL_SOURCE (meson.build): the worker path needs liburcu's inline read side"
#endif
#include <urcu-qsbr.h>

namespace vcplane {

// Reads a pointer the control thread published with rcu_assign_pointer(): a load that orders
// the reads through the pointer after it (acquire, which is what GCC gives consume; on x86 a
// plain move). The worker-side half of publication.
template <typename T>
inline T* rcu_load(T* const& published) noexcept {
    return __atomic_load_n(&published, __ATOMIC_CONSUME);
}

} // namespace vcplane
