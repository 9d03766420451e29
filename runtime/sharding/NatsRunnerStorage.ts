/**
 * effect/cluster `RunnerStorage` in NATS JetStream KV: runner membership and
 * shard locks as leases that work on nats-server 2.9 (no per-message TTL, no
 * watch event when a key ages out).
 *
 * - `<ns>_runners`: `runner.<address>` → the encoded runner and its health;
 *   `machine.<n>` claims a snowflake machine id. Rewritten on every round of
 *   renewals (about twice a second); the bucket's max_age drops a dead
 *   runner's keys.
 * - `<ns>_shards`: `shard.<group>.<id>` → the owner's address; taken,
 *   renewed and released by ShardLeaseBook.
 * - A runner proven dead has both freed at once (RunnerDeaths).
 *
 * Both buckets have max_age = `leaseMs`. The node's own view of each lease
 * (ShardLeases) ends `marginMs` before NATS could hand the shard to anyone
 * else, measured from when the renewal was sent; a shard past that local
 * deadline is reported lost to Sharding, which stops its entities.
 */
import { Context, Deferred, Effect, Layer, Scope } from "effect"
import { PersistenceError } from "effect/cluster/ClusterError"
import * as RunnerStorage from "effect/cluster/RunnerStorage"
import { Readiness } from "../health/Readiness.ts"
import { ClusterMetrics } from "../metrics/ClusterMetrics.ts"
import { listKeys, NatsClient } from "./NatsClient.ts"
import { nodesMaxAgeMs } from "./NodeDirectory.ts"
import * as HandoffHolds from "./HandoffHolds.ts"
import * as Notice from "./Notice.ts"
import * as RunnerDeaths from "./RunnerDeaths.ts"
import { type LeaseTable, monotonicNow, ShardHandoff, ShardLeases } from "./ShardLeases.ts"
import {
  acquireBudgetMs,
  attempt,
  defaultLeaseTiming,
  type LeaseTiming,
  makeLeaseBook,
  readEntry,
  runnerKey
} from "./ShardLeaseBook.ts"

export { defaultLeaseTiming, type LeaseTiming } from "./ShardLeaseBook.ts"

const maxMachineId = 1023

/** The longest a closing storage waits for cameras still handing over (each hold is bounded itself). */
const drainMs = 10_000

interface RunnerEntry {
  /** The encoded address (`host:port`), as the storage's calls name it. */
  readonly address: string
  readonly runner: string
  readonly healthy: boolean
  readonly machineId: number
  /** The leases renewed in the last round (`group:id`): what a survivor frees first when this runner dies. */
  readonly shards?: ReadonlyArray<string>
}

/** What readiness reads: is this node in the membership, are its renewals going through? */
export interface MembershipHealth {
  /** This node's runner was in the last membership read. */
  selfListed: boolean
  /** Monotonic time of the last refresh NATS accepted. */
  lastRenewalAt: number | undefined
}

export interface NatsRunnerStorage {
  readonly storage: RunnerStorage.RunnerStorage["Service"]
  readonly leases: LeaseTable
  readonly handoff: ShardHandoff["Service"]
  readonly health: MembershipHealth
}

export const make = (timing: LeaseTiming = defaultLeaseTiming) =>
  Effect.gen(function*() {
    const nats = yield* NatsClient
    const metrics = yield* ClusterMetrics
    const health: MembershipHealth = { selfListed: false, lastRenewalAt: undefined }
    const runners = yield* nats.bucket("runners", { maxAgeMs: timing.leaseMs })
    const shards = yield* nats.bucket("shards", { maxAgeMs: timing.leaseMs })
    /** Addresses in the membership as last read (key tokens), and the entries behind them. */
    let members = new Set<string>()
    let memberEntries: ReadonlyArray<RunnerDeaths.Member> = []
    /** This node's runner entries, rewritten on every refresh. */
    const registered = new Map<string, RunnerEntry>()

    // Releases are announced on a plain subject (nats-server 2.9 has no cheap way to watch only
    // the deletes of a bucket whose every lease is rewritten twice a second).
    const releasedSubject = `${nats.namespace}.shards.released`
    const book = makeLeaseBook({
      shards,
      timing,
      metrics,
      isMember: (token) => members.has(token),
      announceRelease: (shardId) => nats.connection.publish(releasedSubject, shardId)
    })
    yield* Effect.acquireRelease(
      Effect.sync(() =>
        nats.connection.subscribe(releasedSubject, {
          callback: (error, message) => {
            if (error === null) book.releasedElsewhere(message.string())
          }
        })
      ),
      (subscription) => Effect.sync(() => subscription.unsubscribe())
    )
    const { leases } = book

    /** What each shard's lease must outlive; releases wait for it. */
    const holds = HandoffHolds.make(book.release)

    const writeRunner = (address: string, entry: RunnerEntry) =>
      Effect.all([
        attempt("put runner", () => runners.put(runnerKey(address), JSON.stringify(entry))),
        attempt("put machine id", () => runners.put(`machine.${entry.machineId}`, address))
      ], { discard: true })

    /**
     * The smallest machine id no live runner holds, claimed by create. An id freed a moment
     * ago (its delete marker is listed until the bucket's max_age drops it) is skipped.
     */
    const claimMachineId = (address: string) =>
      Effect.gen(function*() {
        const keys = yield* attempt("list machine ids", () => listKeys(runners, "machine.*"))
        const taken = new Set(keys.map((key) => Number(key.slice("machine.".length))))
        for (let id = 0; id <= maxMachineId; id++) {
          if (taken.has(id)) continue
          const claimed = yield* attempt("claim machine id", () => runners.create(`machine.${id}`, address)).pipe(
            Effect.as(true),
            Effect.catch(() => Effect.succeed(false))
          )
          if (claimed) return id
        }
        return yield* new PersistenceError({ cause: new Error("no free machine id (1024 runners)") })
      })

    const scope = yield* Effect.scope
    /** The leases Sharding asked about last, and the address they are held for. */
    let renewing: { readonly address: string; readonly shardIds: ReadonlyArray<string> } | undefined

    /**
     * One round of renewals: the leases Sharding still holds (those it stopped
     * asking about lapse, or were released), then the runner's key. The key
     * after the leases: when a dead runner drops out of the membership, its
     * leases have already lapsed, so the survivors take its shards at once;
     * the key lists the leases just renewed, for RunnerDeaths.
     */
    const renewRound = Effect.gen(function*() {
      const round = renewing
      if (round === undefined) return
      const startedAt = monotonicNow()
      // Released by Sharding while a camera of the shard was still stopping: renewed until it is done.
      const listed = [...round.shardIds, ...holds.deferred()]
      const renewed = yield* book.renewAll(round.address, book.toRenew(listed, startedAt))
      const mine = registered.get(round.address)
      if (mine !== undefined) {
        const entry = { ...mine, shards: renewed }
        registered.set(round.address, entry)
        yield* writeRunner(round.address, entry)
      }
      health.lastRenewalAt = startedAt
      metrics.leaseRenewal((monotonicNow() - startedAt) / 1000)
    })
    yield* renewRound.pipe(
      Effect.catch((error) => Effect.logWarning("lease renewal failed; leases end at their local deadline", error.message)),
      Effect.andThen(Effect.sleep(timing.renewEveryMs)),
      Effect.forever,
      Effect.annotateLogs({ module: "NatsRunnerStorage" }),
      Effect.forkScoped
    )

    const nodes = yield* nats.bucket("nodes", { maxAgeMs: nodesMaxAgeMs })
    yield* RunnerDeaths.watch({
      connection: nats.connection,
      namespace: nats.namespace,
      runners,
      shards,
      nodes,
      others: () => memberEntries.filter((member) => !registered.has(member.address)),
      everyMs: 250,
      onBuried: (address, leases, tookMs) =>
        Effect.logWarning("runner died (no NATS connection, its HTTP port refuses connections); its shards are free now").pipe(
          Effect.annotateLogs({ runner: address, leases, tookMs }),
          Effect.andThen(Effect.sync(() => metrics.runnerBuried()))
        )
    }).pipe(Effect.annotateLogs({ module: "RunnerDeaths" }), Effect.forkScoped)

    const storage = RunnerStorage.makeEncoded({
      getRunners: attempt("list runners", async () => {
        const keys = await listKeys(runners, "runner.*")
        const entries = await Promise.all(keys.map((key) => runners.get(key)))
        const live = entries.filter((entry) => entry !== null && entry.operation === "PUT")
        metrics.view.nodes = live.length
        members = new Set(live.map((entry) => entry!.key.slice("runner.".length)))
        health.selfListed = [...registered.keys()].some((address) => keys.includes(runnerKey(address)))
        // One decode per entry: the membership for Sharding, and the members RunnerDeaths watches.
        const listed: Array<readonly [string, boolean]> = []
        const watched: Array<RunnerDeaths.Member> = []
        for (const entry of live) {
          let decoded: RunnerEntry
          try {
            decoded = entry!.json<RunnerEntry>()
          } catch {
            continue
          }
          listed.push([decoded.runner, decoded.healthy])
          if (typeof decoded.address !== "string") continue
          const held = Array.isArray(decoded.shards) ? decoded.shards : []
          watched.push({ address: decoded.address, key: entry!.key, revision: entry!.revision, machineId: decoded.machineId, shards: held })
        }
        memberEntries = watched
        return listed
      }),
      register: (address, runner, healthy) =>
        Effect.gen(function*() {
          const previous = registered.get(address)
          const machineId = previous?.machineId ?? (yield* claimMachineId(address))
          const entry = { address, runner, healthy, machineId }
          if (!registered.has(address)) yield* RunnerDeaths.answerAlive(nats.connection, nats.namespace, address).pipe(Scope.provide(scope))
          registered.set(address, entry)
          yield* writeRunner(address, entry)
          return machineId
        }),
      unregister: (address) =>
        Effect.gen(function*() {
          // Stopping: effect/cluster unregisters first, then stops the entities of every shard, and
          // releases the shards after the last one; a shard whose last hold (ShardHandoff) ends
          // goes before that. The leases still held are renewed until then (the renewal round skips the
          // runner key once it is unregistered), so a stop slower than a lease (a loaded machine,
          // ffmpegs closing their last chunks) hands its shards over instead of letting them lapse,
          // which would skip the live tail and make the successors wait for max_age; after
          // `releaseAll` only the leases whose release waits for a hold are renewed.
          holds.leave()
          const entry = registered.get(address)
          registered.delete(address)
          yield* attempt("unregister", () => runners.delete(runnerKey(address))).pipe(Effect.ignore)
          if (entry !== undefined) yield* attempt("free machine id", () => runners.delete(`machine.${entry.machineId}`)).pipe(Effect.ignore)
        }),
      setRunnerHealth: (address, healthy) =>
        Effect.gen(function*() {
          const mine = registered.get(address)
          if (mine !== undefined) {
            const entry = { ...mine, healthy }
            registered.set(address, entry)
            return yield* writeRunner(address, entry)
          }
          // Another runner's entry: rewrite its health only while it is still there.
          const current = yield* readEntry(runners, runnerKey(address))
          if (current === undefined) return
          const entry = { ...current.json<RunnerEntry>(), healthy }
          yield* attempt("set health", () => runners.update(runnerKey(address), JSON.stringify(entry), current.revision)).pipe(Effect.ignore)
        }),
      // Answers as soon as each lease is taken, refused, or being taken from a leaver, and within
      // `acquireBudgetMs` in any case: Sharding gives an acquisition 1 s (min(1 s, lease / 3)) and
      // takes none of its shards when it runs over, and sleeps a second after a round that answers.
      // The rest finish in the background; the next round finds them held and only renews them.
      // A lease being taken from a leaver (a SIGTERM handover: out of the membership, releasing
      // each lease as its entities stop) is answered as acquired: the shard's actors start here
      // meanwhile and wait at the ownership fence, which opens the moment the lease is taken, so
      // each camera moves as soon as its own lease is free instead of after the leaver's last one.
      // Nothing is done for it before then: every side effect is fenced on the lease itself. A
      // take that fails after all (another node was quicker) is reported lost at the next refresh.
      acquire: (address, shardIds) =>
        Effect.gen(function*() {
          const taken: Array<string> = []
          const settled = new Set<string>()
          const progress = Notice.make()
          const settle = (shardId: string) =>
            Effect.sync(() => {
              settled.add(shardId)
              progress.fire()
            })
          yield* Effect.forEach(shardIds, (shardId) =>
            book.acquireOne(address, shardId).pipe(
              Effect.map((ok) => {
                if (ok) taken.push(shardId)
              }),
              Effect.ignore,
              Effect.ensuring(settle(shardId))
            ), {
            // All at once: waits for leavers overlap instead of adding up.
            concurrency: "unbounded",
            discard: true
          }).pipe(Effect.forkIn(scope))
          const deadline = monotonicNow() + acquireBudgetMs
          while (true) {
            // Read before the check, so a change between the two wakes the wait.
            const changed = [progress.next(), book.startedWaiting()]
            if (shardIds.every((id) => settled.has(id) || book.isAwaitingLeaver(id))) break
            const left = deadline - monotonicNow()
            if (left <= 0) break
            yield* Effect.raceAll(changed.map((signal) => Deferred.await(signal))).pipe(Effect.timeoutOption(left))
          }
          return [...taken, ...shardIds.filter((id) => !settled.has(id) && book.isAwaitingLeaver(id))]
        }),
      // Answered from the lease book at once; the renewer below keeps the book current. Sharding
      // gives a refresh 1 s (min(1 s, lease / 3)) and drops every shard when it runs over,
      // which a busy 2-core node (ffmpeg start-ups, ~10 ms per spawn) did not always manage
      // when the renewals ran inside it. Each lease still ends at its own local deadline.
      refresh: (address, shardIds) =>
        Effect.sync(() => {
          renewing = { address, shardIds }
          return shardIds.filter(book.stillHeld)
        }),
      release: (_address, shardId) => holds.release(shardId),
      releaseAll: (_address) =>
        Effect.suspend(() => {
          // Stopping: only what still waits for its holds is renewed; what a release misses lapses
          // within the lease.
          renewing = renewing === undefined ? undefined : { address: renewing.address, shardIds: [] }
          return Effect.forEach(book.heldIds(), holds.release, { concurrency: 64, discard: true })
        })
    })
    // Closing: a camera still stopping (its last chunk, its tail) keeps its lease until it is done;
    // then the releases that waited go. Runs before the renewer stops (finalizers run in reverse
    // order), so the leases are renewed meanwhile.
    yield* Effect.addFinalizer(() => holds.drain(drainMs))
    return { storage, leases, handoff: holds.service, health } satisfies NatsRunnerStorage
  })

/**
 * `RunnerStorage` and the `ShardLeases` it keeps, from one NATS client; and
 * the `cluster` readiness check: connected, listed in the membership, and
 * renewing within the lease.
 */
export const layer = (timing: LeaseTiming = defaultLeaseTiming) =>
  Layer.effectContext(
    Effect.gen(function*() {
      const { handoff, health, leases, storage } = yield* make(timing)
      const nats = yield* NatsClient
      const readiness = yield* Readiness
      yield* readiness.register("cluster", Effect.sync(() => {
        if (nats.connection.isClosed()) return "the NATS connection is closed"
        if (!health.selfListed) return "not in the cluster membership yet"
        if (health.lastRenewalAt === undefined || monotonicNow() - health.lastRenewalAt > timing.leaseMs) {
          return "lease renewals are not going through"
        }
        return undefined
      }))
      return Context.make(RunnerStorage.RunnerStorage, storage).pipe(
        Context.add(ShardLeases, leases),
        Context.add(ShardHandoff, handoff)
      )
    })
  )
