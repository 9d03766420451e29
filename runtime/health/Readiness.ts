/**
 * What `/health/ready` reports: every dependency (database, store, bus, shard
 * assignment, …) registers a check here when its layer is built; the node is
 * ready when every check passes. A check answers `undefined` when ready, or
 * the reason it is not.
 */
import { Context, Effect, Layer, type Scope } from "effect"

export type ReadinessCheck = Effect.Effect<string | undefined>

export interface ReadinessReport {
  readonly ready: boolean
  readonly checks: ReadonlyArray<{ readonly name: string; readonly ready: boolean; readonly reason?: string }>
}

export class Readiness extends Context.Service<Readiness, {
  /** Registers a named check for as long as the calling scope is open. */
  readonly register: (name: string, check: ReadinessCheck) => Effect.Effect<void, never, Scope.Scope>
  readonly report: Effect.Effect<ReadinessReport>
}>()("vms/runtime/health/Readiness") {
  /** A registry in which the named dependencies start out as "starting". */
  static readonly layerExpecting = (starting: ReadonlyArray<string>) => Layer.sync(Readiness, () => {
    const checks = new Map<string, ReadinessCheck>()
    const pending = new Map<string, string>(starting.map((name) => [name, "starting"]))
    return Readiness.of({
      register: (name, check) =>
        Effect.acquireRelease(
          Effect.sync(() => {
            pending.delete(name)
            checks.set(name, check)
          }),
          () => Effect.sync(() => checks.delete(name))
        ),
      report: Effect.gen(function*() {
        const results: Array<ReadinessReport["checks"][number]> = []
        for (const [name, reason] of pending) results.push({ name, ready: false, reason })
        const evaluated = yield* Effect.forEach(
          [...checks],
          ([name, check]) =>
            check.pipe(
              Effect.timeout("2 seconds"),
              Effect.catchCause(() => Effect.succeed("check failed or timed out")),
              Effect.map((reason) => (reason === undefined ? { name, ready: true } : { name, ready: false, reason }))
            ),
          { concurrency: "unbounded" }
        )
        results.push(...evaluated)
        results.sort((a, b) => a.name.localeCompare(b.name))
        return { ready: results.length > 0 && results.every((c) => c.ready), checks: results }
      })
    })
  })

  static readonly layer = Readiness.layerExpecting([])
}
