// Compute-once leases as a cached call holds them. The claim itself (who
// holds a lease, whether it is this process's, whether one can be taken
// at all) is the core's; here a held lease is kept referenced until it
// is released.
import type { ComputeLease, LeaseHolder, NoLease } from '../binding/index'
import type { Claim } from './compute-once'

/**
 * Leases this process holds, referenced until released: a lease object
 * that is collected releases its lease, and a computation the program no
 * longer references (awaiting a promise nothing can resolve) must not
 * hand its key to another process while this one lives.
 */
const heldLeases = new Set<ComputeLease>()

/** What the core's claim gave, as the compute-once steps take it. */
export type Claimed = ComputeLease | LeaseHolder | NoLease

/**
 * The lease if this call got it; `null` to compute without one (none can
 * be taken now, or a synchronous call would wait for its own thread, which
 * cannot finish while it waits); undefined while another process, or
 * another thread of this one, holds it.
 * `noLease` is told why none could be taken.
 */
export function claimOf(claimed: Claimed, sync: boolean, noLease: (reason: NoLease['reason']) => void): Claim {
  if ('reason' in claimed) {
    noLease(claimed.reason)
    return null
  }
  if ('holder' in claimed) return sync && claimed.thisThread ? null : undefined
  heldLeases.add(claimed)
  return {
    release() {
      heldLeases.delete(claimed)
      claimed.release()
    },
  }
}
