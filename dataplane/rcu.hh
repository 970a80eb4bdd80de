#pragma once
// How vcplane uses RCU (liburcu, QSBR flavour) — read this before touching a shared table.
//
// Who reads, who writes
//   Worker lcores are QSBR readers. They register once (rcu_register_thread), then read the
//   forwarding tables with rcu_dereference() and, between bursts, announce a quiescent state
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
//   more — e.g. at shutdown after the workers left — are freed directly.)
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

#include <urcu-qsbr.h>
