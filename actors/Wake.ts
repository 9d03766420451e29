/**
 * Waking actors by id: the keepers send each one an `Ensure` (16 at a time,
 * 10 s each) and count the ones they could not reach, instead of failing.
 */
import { Effect } from "effect"

/** Sends `ensure(id)` to every id; answers how many did not answer. */
export const wakeEach = <E, R>(
  ids: ReadonlyArray<string>,
  ensure: (id: string) => Effect.Effect<unknown, E, R>
): Effect.Effect<number, never, R> =>
  Effect.gen(function*() {
    let failed = 0
    yield* Effect.forEach(ids, (id) =>
      ensure(id).pipe(
        Effect.timeout("10 seconds"),
        Effect.catch(() => Effect.sync(() => void failed++))
      ), { concurrency: 16, discard: true })
    return failed
  })
