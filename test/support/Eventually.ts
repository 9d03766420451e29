/**
 * Waiting on a condition with a deadline, for tests that observe a live
 * server: polls `check` until it returns a value (not `undefined`), or fails
 * with the description after `timeoutMs`.
 */
import { Effect, Schema } from "effect"

export class ConditionTimeout extends Schema.TaggedError<ConditionTimeout>()("ConditionTimeout", {
  description: Schema.String,
  timeoutMs: Schema.Number
}) {}

export const eventually = <A, E, R>(
  description: string,
  check: Effect.Effect<A | undefined, E, R>,
  timeoutMs = 10_000,
  intervalMs = 25
): Effect.Effect<A, E | ConditionTimeout, R> =>
  Effect.gen(function*() {
    const deadline = Date.now() + timeoutMs
    while (true) {
      const value = yield* check
      if (value !== undefined) return value
      if (Date.now() > deadline) {
        return yield* new ConditionTimeout({ description, timeoutMs })
      }
      yield* Effect.sleep(intervalMs)
    }
  })

/** `eventually` for a synchronous predicate. */
export const until = (description: string, predicate: () => boolean, timeoutMs?: number) =>
  eventually(description, Effect.sync(() => predicate() ? true : undefined), timeoutMs)
