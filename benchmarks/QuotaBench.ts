/**
 * `vms bench quota`: admissions through one node's `AgencyQuota` actors,
 * with each reservation store (in process, as embedded nodes run; Redis, as
 * clusters run). The node runs in process on a throwaway Postgres (the
 * local server, else embedded); the callers are fibers of the same process
 * asking the node's `QuotaAdmissions`, as the node's APIs do (it sends what
 * arrives together to the agency's actor as one batch).
 *
 * 1. Throughput: `concurrency` callers admit new reservations to 16
 *    agencies with room, for `durationSeconds` after a warm-up; budget
 *    ≥ 20,000 admissions per second per node.
 * 2. Contention: the same callers on one agency with a limit of 50; each
 *    granted caller holds its slot briefly, then releases it. A caller counts
 *    itself holding from the grant's arrival until just before it releases,
 *    so the count never exceeds what the store holds: any moment it passes
 *    the limit is an over-admission (budget 0). The store's own count is
 *    sampled as well.
 *
 * Writes `quota.json` and `quota.md`.
 */
import { NodeServices } from "@effect/platform-node"
import { Effect, Fiber, Schema } from "effect"
import { randomUUID } from "node:crypto"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { AgencyQuota } from "../actors/AgencyQuota.ts"
import { AgencyStore } from "../runtime/agencies/AgencyStore.ts"
import * as NodeConfig from "../runtime/config/NodeConfig.ts"
import * as Node from "../runtime/Node.ts"
import { QuotaAdmissions } from "../runtime/quota/QuotaAdmissions.ts"
import { ReservationStore } from "../runtime/quota/ReservationStore.ts"
import { benchDatabaseUrl } from "./BenchDatabase.ts"

export class QuotaBenchError extends Schema.TaggedError<QuotaBenchError>()("QuotaBenchError", {
  reason: Schema.String
}) {
  override get message() {
    return this.reason
  }
}

export interface QuotaBenchOptions {
  readonly dataDir: string
  readonly resultsDir: string
  readonly redisUrl?: string | undefined
  readonly concurrency?: number
  readonly durationSeconds?: number
  readonly warmupSeconds?: number
}

const admissionsBudget = 20_000
const contentionLimit = 50
const throughputAgencies = 16

interface PhaseResult {
  readonly decisions: number
  readonly perSecond: number
  readonly granted: number
  readonly refused: number
  readonly failed: number
}

interface ContentionResult extends PhaseResult {
  readonly limit: number
  readonly maxHeld: number
  readonly overAdmissions: number
  readonly maxStoreCount: number
}

interface StoreResult {
  readonly store: "in process" | "Redis"
  readonly throughput: PhaseResult
  readonly contention: ContentionResult
}

/** Runs `worker` on `concurrency` fibers for warm-up + duration; answers what happened in the measured window. */
const hammer = (
  concurrency: number,
  warmupMs: number,
  durationMs: number,
  worker: (measuring: () => boolean, tally: Tally) => Effect.Effect<void>
) =>
  Effect.gen(function*() {
    const tally: Tally = { granted: 0, refused: 0, failed: 0 }
    let phase: "warmup" | "measure" | "done" = "warmup"
    const fibers = yield* Effect.forEach(
      Array.from({ length: concurrency }),
      // Forked one after another from this fiber, so they are its children (not a forEach worker's).
      () => Effect.forkChild(Effect.whileLoop({ while: () => phase !== "done", body: () => worker(() => phase === "measure", tally), step: () => {} }))
    )
    yield* Effect.sleep(warmupMs)
    phase = "measure"
    const started = performance.now()
    yield* Effect.sleep(durationMs)
    phase = "done"
    const seconds = (performance.now() - started) / 1000
    const exits = yield* Fiber.awaitAll(fibers)
    const broken = exits.filter((exit) => exit._tag === "Failure")
    if (broken.length > 0) {
      return yield* new QuotaBenchError({ reason: `${broken.length} callers died: ${String(broken[0]!.cause)}` })
    }
    const decisions = tally.granted + tally.refused
    return { decisions, perSecond: decisions / seconds, ...tally }
  })

interface Tally {
  granted: number
  refused: number
  failed: number
}

const runStore = (options: QuotaBenchOptions, store: StoreResult["store"]) =>
  Effect.gen(function*() {
    const concurrency = options.concurrency ?? 256
    const warmupMs = (options.warmupSeconds ?? 3) * 1000
    const durationMs = (options.durationSeconds ?? 10) * 1000
    const clientFor = yield* AgencyQuota.client
    const admissions = yield* QuotaAdmissions
    const agencies = yield* AgencyStore
    const reservations = yield* ReservationStore
    const run = randomUUID().slice(0, 8)
    const fail = (reason: string) => new QuotaBenchError({ reason })

    const roomy = Array.from({ length: throughputAgencies }, (_, i) => `bench-${run}-${i}`)
    for (const id of roomy) {
      yield* agencies.create({ id, name: id, maxLiveStreams: 1_000_000, maxViewersPerCamera: null, maxPlaybackStreams: null })
        .pipe(Effect.mapError((error) => fail(error._tag)))
    }
    const contended = `bench-${run}-contended`
    yield* agencies.create({ id: contended, name: contended, maxLiveStreams: contentionLimit, maxViewersPerCamera: null, maxPlaybackStreams: null })
      .pipe(Effect.mapError((error) => fail(error._tag)))

    const admit = (agencyId: string, reservationId = randomUUID()) =>
      admissions.admit(agencyId, { reservationId, cameraId: "cam", holder: "bench", kind: "live", ttlMs: 60_000 })

    let next = 0
    yield* Effect.logInfo("quota bench: throughput").pipe(Effect.annotateLogs({ store, concurrency }))
    const throughput = yield* hammer(concurrency, warmupMs, durationMs, (measuring, tally) =>
      admit(roomy[next++ % throughputAgencies]!).pipe(
        Effect.match({
          onSuccess: () => measuring() && void tally.granted++,
          onFailure: (error) => measuring() && void (error._tag === "QuotaExceeded" ? tally.refused++ : tally.failed++)
        }),
        Effect.asVoid
      ))

    yield* Effect.logInfo("quota bench: contention").pipe(Effect.annotateLogs({ store, limit: contentionLimit }))
    let held = 0
    let maxHeld = 0
    let overAdmissions = 0
    let maxStoreCount = 0
    const sampler = yield* reservations.usage(contended, "live").pipe(
      Effect.tap((count) => Effect.sync(() => void (maxStoreCount = Math.max(maxStoreCount, count)))),
      Effect.andThen(Effect.sleep(50)),
      Effect.forever,
      Effect.ignore,
      Effect.forkChild
    )
    const contention = yield* hammer(concurrency, warmupMs, durationMs, (measuring, tally) =>
      Effect.gen(function*() {
        const reservationId = randomUUID()
        const answer = yield* Effect.result(admit(contended, reservationId))
        if (answer._tag === "Failure") {
          if (measuring()) void (answer.failure._tag === "QuotaExceeded" ? tally.refused++ : tally.failed++)
          return
        }
        held++
        maxHeld = Math.max(maxHeld, held)
        if (held > contentionLimit) overAdmissions++
        if (measuring()) tally.granted++
        yield* Effect.sleep(Math.floor(Math.random() * 3))
        held--
        yield* clientFor(contended).Release({ reservationId }).pipe(Effect.ignore)
      }))
    yield* Fiber.interrupt(sampler)
    return {
      store,
      throughput,
      contention: { ...contention, limit: contentionLimit, maxHeld, overAdmissions, maxStoreCount }
    } satisfies StoreResult
  })

/** One in-process node on a throwaway database, with the given reservation store. */
const onNode = <A, E, R>(options: QuotaBenchOptions, redisUrl: string | undefined, body: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const databaseUrl = yield* benchDatabaseUrl
    const dataDir = yield* Effect.acquireRelease(
      Effect.promise(async () => {
        await fs.mkdir(options.dataDir, { recursive: true })
        return fs.mkdtemp(path.join(path.resolve(options.dataDir), "bench-quota-"))
      }),
      (dir) => Effect.promise(() => fs.rm(dir, { recursive: true, force: true }))
    )
    const config = yield* NodeConfig.fromEnv({
      VMS_DATA_DIR: dataDir,
      VMS_HTTP_PORT: "0",
      VMS_LOG_LEVEL: "warn",
      VMS_CLUSTER: `bench${randomUUID().slice(0, 8)}`,
      ...(databaseUrl === undefined ? {} : { VMS_DATABASE_URL: databaseUrl }),
      ...(redisUrl === undefined ? {} : { VMS_REDIS_URL: redisUrl })
    })
    return yield* body.pipe(Effect.provide(Node.layer(config)))
  }).pipe(Effect.scoped)

export const runQuotaBench = (options: QuotaBenchOptions) =>
  Effect.gen(function*() {
    const redisUrl = options.redisUrl ?? process.env.VMS_REDIS_URL ?? "redis://127.0.0.1:6379"
    const loadBefore = os.loadavg()[0]!
    const stores: Array<StoreResult> = [
      yield* onNode(options, undefined, runStore(options, "in process")),
      yield* onNode(options, redisUrl, runStore(options, "Redis"))
    ]
    const result = {
      scenario: "quota",
      at: new Date().toISOString(),
      machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? "unknown", node: process.version },
      /** The machine's 1-minute load average before and after: other work on it lowers the figures. */
      loadAverage: { before: loadBefore, after: os.loadavg()[0]! },
      concurrency: options.concurrency ?? 256,
      durationSeconds: options.durationSeconds ?? 10,
      warmupSeconds: options.warmupSeconds ?? 3,
      budget: { admissionsPerSecond: admissionsBudget, overAdmissions: 0 },
      stores,
      withinBudget: stores.every((s) =>
        s.throughput.perSecond >= admissionsBudget && s.contention.overAdmissions === 0 && s.contention.maxStoreCount <= contentionLimit
      )
    }
    yield* Effect.promise(async () => {
      await fs.mkdir(options.resultsDir, { recursive: true })
      await fs.writeFile(path.join(options.resultsDir, "quota.json"), `${JSON.stringify(result, null, 2)}\n`)
      await fs.writeFile(path.join(options.resultsDir, "quota.md"), toMarkdown(result))
    })
    for (const s of stores) {
      yield* Effect.logInfo("quota bench done").pipe(Effect.annotateLogs({
        store: s.store,
        admissionsPerSecond: Math.round(s.throughput.perSecond),
        contendedPerSecond: Math.round(s.contention.perSecond),
        overAdmissions: s.contention.overAdmissions
      }))
    }
    return result
  }).pipe(Effect.provide(NodeServices.layer))

const n = (value: number) => Math.round(value).toLocaleString("en-US")

export const toMarkdown = (result: {
  readonly at: string
  readonly machine: { readonly cpus: number; readonly cpuModel: string; readonly node: string }
  readonly loadAverage: { readonly before: number; readonly after: number }
  readonly concurrency: number
  readonly durationSeconds: number
  readonly warmupSeconds: number
  readonly stores: ReadonlyArray<StoreResult>
}) => `# vms bench quota

${result.at}, ${result.machine.cpus} × ${result.machine.cpuModel}, Node ${result.machine.node}, load average
${result.loadAverage.before.toFixed(1)} before and ${result.loadAverage.after.toFixed(1)} after (other work on the machine lowers the figures). One node in process; ${result.concurrency} concurrent callers
ask the node's \`QuotaAdmissions\` (as the APIs do), which sends what arrives together to the \`AgencyQuota\` actors as one
batch, for ${result.durationSeconds} s after ${result.warmupSeconds} s of warm-up.

## Throughput: ${throughputAgencies} agencies with room (budget ≥ ${n(admissionsBudget)} admissions/s per node)

| store | admissions | per second | refused | failed | budget |
|---|---|---|---|---|---|
${result.stores.map((s) =>
  `| ${s.store} | ${n(s.throughput.decisions)} | **${n(s.throughput.perSecond)}** | ${n(s.throughput.refused)} | ${n(s.throughput.failed)} | ${s.throughput.perSecond >= admissionsBudget ? "✅" : "❌"} |`
).join("\n")}

## Contention: one agency, limit ${contentionLimit}; each granted caller holds 0–2 ms, then releases (budget 0 over-admissions)

| store | decisions | per second | granted | refused | failed | most held at once | most in the store | over-admissions |
|---|---|---|---|---|---|---|---|---|
${result.stores.map((s) =>
  `| ${s.store} | ${n(s.contention.decisions)} | ${n(s.contention.perSecond)} | ${n(s.contention.granted)} | ${n(s.contention.refused)} | ${n(s.contention.failed)} | ${s.contention.maxHeld} | ${s.contention.maxStoreCount} | **${s.contention.overAdmissions}** ${s.contention.overAdmissions === 0 ? "✅" : "❌"} |`
).join("\n")}

A caller counts itself holding from the grant's arrival until just before it sends its release, so its count never
exceeds the store's; a count above the limit would be an over-admission. The store's own count is sampled every 50 ms.
`
