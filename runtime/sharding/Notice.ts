/**
 * A wake-up for fibers waiting on state that changes elsewhere (a lease
 * taken, a take waiting for a leaver, a hold ended): read `next()` before
 * checking the state, then await it; `fire()` wakes every wait that read it
 * before, and arms the next one. Reading first means a change between the
 * check and the wait is never missed.
 */
import { Deferred, Exit } from "effect"

export interface Notice {
  readonly next: () => Deferred.Deferred<void>
  readonly fire: () => void
}

export const make = (): Notice => {
  let current = Deferred.makeUnsafe<void>()
  return {
    next: () => current,
    fire: () => {
      const fired = current
      current = Deferred.makeUnsafe<void>()
      Deferred.doneUnsafe(fired, Exit.void)
    }
  }
}
