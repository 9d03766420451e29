/**
 * Restart delays: exponential from `initial` to `max`, with full jitter on the
 * upper half (so 200 cameras dropped together do not reconnect in lockstep).
 */

export interface BackoffPolicy {
  readonly initialMs: number
  readonly maxMs: number
  /** A run that stayed healthy this long resets the attempt count. */
  readonly resetAfterMs: number
}

export const defaultBackoff: BackoffPolicy = { initialMs: 1_000, maxMs: 30_000, resetAfterMs: 60_000 }

/** Delay before restart number `attempt` (1 = the first restart). */
export const delayMs = (policy: BackoffPolicy, attempt: number, random: () => number = Math.random): number => {
  const base = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.max(0, attempt - 1))
  return Math.round(base / 2 + (base / 2) * random())
}
