/**
 * Waiting on a condition with a deadline (never a bare sleep as
 * synchronisation): retries `check` every `interval` until it succeeds, and
 * fails with the last failure once `timeout` has passed.
 */
import { Duration, Effect, Schedule } from "effect"

export const eventually = <A, E, R>(
  check: Effect.Effect<A, E, R>,
  options: { readonly timeout: Duration.Input; readonly interval?: Duration.Input }
): Effect.Effect<A, E, R> => {
  const deadline = Date.now() + Duration.toMillis(Duration.fromInputUnsafe(options.timeout))
  return check.pipe(
    Effect.retry({
      schedule: Schedule.spaced(options.interval ?? "50 millis"),
      while: () => Date.now() < deadline
    })
  )
}

/** Fails unless `condition` holds; for use inside `eventually`. */
export const ensure = (condition: boolean, message: string) =>
  condition ? Effect.void : Effect.fail(new Error(message))
