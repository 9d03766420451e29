/**
 * effect/cluster `RunnerStorage` in NATS JetStream KV: runner membership and
 * shard locks as leases that work on nats-server 2.9 (no per-message TTL, no
 * watch event when a key ages out).
 *
 * - `<ns>_runners`: `runner.<address>` → the encoded runner and its health;
 *   `machine.<n>` claims a snowflake machine id. Rewritten on every round of
 *   renewals (about twice a second); the bucket's max_age drops a dead
 *   runner's keys.
 * - `<ns>_shards`: `shard.<group>.<id>` → the owner's address. Taken with
 *   `create` (succeeds only while no live entry exists: the previous owner's
 *   entry aged out or was released), renewed with `update` against the
 *   revision this node wrote last (compare-and-set: a lost lease is never
 *   renewed), released with a revision-checked delete.
 *
 * Both buckets have max_age = `leaseMs`. The node's own view of each lease
 * (ShardLeases) ends `marginMs` before NATS could hand the shard to anyone
 * else, measured from when the renewal was sent; a shard past that local
 * deadline is reported lost to Sharding, which stops its entities.
 */
import type { KV } from "@nats-io/kv"
import { Context, Deferred, Effect, Fiber, Layer, Scope } from "effect"
import { PersistenceError } from "effect/cluster/ClusterError"
import * as RunnerStorage from "effect/cluster/RunnerStorage"
import { Readiness } from "../health/Readiness.ts"
import { ClusterMetrics } from "../metrics/ClusterMetrics.ts"
import { NatsClient } from "./NatsClient.ts"
import { nodesMaxAgeMs } from "./NodeDirectory.ts"
import * as RunnerDeaths from "./RunnerDeaths.ts"
import { type LeaseTable, monotonicNow, ShardLeases } from "./ShardLeases.ts"

export interface LeaseTiming {
  /** Max age of the KV entries: a lease not renewed within it expires in NATS. */
  readonly leaseMs: number
  /** The owner stops this long before NATS can expire its lease. */
  readonly marginMs: number
  /** Pause between two rounds of renewals (a round renews every held lease and the runner key). */
  readonly renewEveryMs: number
}

/**
 * A 4 s lease renewed every half second: a node whose fibers stall for up to
 * ~2.5 s keeps its shards. On a 2-core machine running 30 cameras, bursts of
 * ffmpeg start-ups stalled the node's renewals for 2-3 s; with a 2 s lease
 * the node then lost its shards, restarted their cameras elsewhere, and the
 * extra start-ups stalled the next node (a cascade). The price: after a
 * crash, shards wait up to 4 s for their lease to lapse.
 */
export const defaultLeaseTiming: LeaseTiming = { leaseMs: 4_000, marginMs: 800, renewEveryMs: 500 }

const maxMachineId = 1023
/**
 * How long an acquisition waits for a lease whose holder left the membership
 * (a node stopping with SIGTERM unregisters first, then stops its entities and
 * releases their leases, 0.3-0.6 s later here). Sharding sleeps a second after
 * each acquisition round, so a lease released just after the round gave up
 * cost a whole extra second of live interruption.
 */
const leaverGraceMs = 800

/**
 * An acquisition round answers within this with what it took so far; the
 * rest finish in the background and the next round claims them. Sharding
 * gives a round min(1 s, lease / 3) = 1 s; one that runs over is retried at
 * once, with nothing lost (the leases it took are held here).
 */
const acquireBudgetMs = 850

/** KV keys allow `[-/_=.a-zA-Z0-9]`. */
const keyToken = (value: string) => value.replace(/[^A-Za-z0-9_=-]/g, "_")
const runnerKey = (address: string) => `runner.${keyToken(address)}`
/** `group:id` → `shard.<group>.<id>` */
const shardKey = (shardId: string) => {
  const colon = shardId.lastIndexOf(":")
  return `shard.${keyToken(shardId.slice(0, colon))}.${shardId.slice(colon + 1)}`
}

interface RunnerEntry {
  /** The encoded address (`host:port`), as the storage's calls name it. */
  readonly address: string
  readonly runner: string
  readonly healthy: boolean
  readonly machineId: number
  /** The leases renewed in the last round (`group:id`): what a survivor frees first when this runner dies. */
  readonly shards?: ReadonlyArray<string>
}

const isWrongSequence = (cause: unknown) => /wrong last sequence|key exists/i.test(String(cause))

const attempt = <A>(operation: string, run: () => Promise<A>) =>
  Effect.tryPromise({
    try: run,
    catch: (cause) => new PersistenceError({ cause: new Error(`${operation}: ${String(cause)}`) })
  })

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
  readonly health: MembershipHealth
}

export const make = (timing: LeaseTiming = defaultLeaseTiming) =>
  Effect.gen(function*() {
    const nats = yield* NatsClient
    const metrics = yield* ClusterMetrics
    const health: MembershipHealth = { selfListed: false, lastRenewalAt: undefined }
    const runners = yield* nats.bucket("runners", { maxAgeMs: timing.leaseMs })
    const shards = yield* nats.bucket("shards", { maxAgeMs: timing.leaseMs })
    const leases: LeaseTable = { deadlines: new Map() }
    /** The revision of the lease entry this node wrote last, per held shard. */
    const revisions = new Map<string, number>()
    /** Addresses in the membership as last read (key tokens), and the entries behind them. */
    let members = new Set<string>()
    let memberEntries: ReadonlyArray<RunnerDeaths.Member> = []
    /** This node's runner entries, rewritten on every refresh. */
    const registered = new Map<string, RunnerEntry>()

    const decodeEntry = (kv: KV, key: string) =>
      attempt(`get ${key}`, () => kv.get(key)).pipe(
        Effect.map((entry) => entry === null || entry.operation !== "PUT" ? undefined : entry)
      )

    const writeRunner = (address: string, entry: RunnerEntry) =>
      Effect.all([
        attempt("put runner", () => runners.put(runnerKey(address), JSON.stringify(entry))),
        attempt("put machine id", () => runners.put(`machine.${entry.machineId}`, address))
      ], { discard: true })

    /** The smallest machine id no live runner holds, claimed by create. */
    const claimMachineId = (address: string) =>
      Effect.gen(function*() {
        const keys = yield* attempt("list machine ids", async () => {
          const found: Array<string> = []
          for await (const key of await runners.keys("machine.*")) found.push(key)
          return found
        })
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

    /** Marks a lease renewed by a write sent at `sentAt` that NATS accepted at `revision`. */
    const held = (shardId: string, revision: number, sentAt: number) => {
      revisions.set(shardId, revision)
      leases.deadlines.set(shardId, sentAt + timing.leaseMs - timing.marginMs)
    }
    const drop = (shardId: string) => {
      revisions.delete(shardId)
      leases.deadlines.delete(shardId)
    }
    const lose = (shardId: string) => {
      if (revisions.has(shardId)) metrics.shardMoved("lost")
      drop(shardId)
    }
    const stillValid = (shardId: string) => {
      const deadline = leases.deadlines.get(shardId)
      return deadline !== undefined && monotonicNow() < deadline
    }

    /** A compare-and-set write that lost (someone else wrote the key meanwhile) answers undefined. */
    const unlessLost = <A>(write: Effect.Effect<A, PersistenceError>) =>
      write.pipe(Effect.catch((error) => isWrongSequence(error.cause) ? Effect.succeed(undefined) : Effect.fail(error)))

    /**
     * One write per lease at a time: the renewer, an acquisition round and one left running by an
     * earlier round may all want the same lease; a second compare-and-set with the same revision
     * would fail and make a held lease look lost. Later callers share the running one's answer.
     */
    const inFlight = new Map<string, Deferred.Deferred<boolean, PersistenceError>>()
    const once = (shardId: string, write: Effect.Effect<boolean, PersistenceError>) =>
      Effect.suspend((): Effect.Effect<boolean, PersistenceError> => {
        const running = inFlight.get(shardId)
        if (running !== undefined) return Deferred.await(running)
        const done = Deferred.makeUnsafe<boolean, PersistenceError>()
        inFlight.set(shardId, done)
        return write.pipe(Effect.onExit((exit) =>
          Effect.sync(() => {
            inFlight.delete(shardId)
            Deferred.doneUnsafe(done, exit)
          })
        ))
      })

    /** Renews a lease this node holds, against the revision it wrote last; a lost one is dropped. */
    const renew = (address: string, shardId: string) => once(shardId, renewNow(address, shardId))
    const renewNow = (address: string, shardId: string) =>
      Effect.gen(function*() {
        const sentAt = monotonicNow()
        const revision = yield* unlessLost(attempt("renew", () => shards.update(shardKey(shardId), address, revisions.get(shardId)!)))
        if (revision === undefined) {
          lose(shardId)
          return false
        }
        if (!revisions.has(shardId)) {
          // Released while this renewal was on its way: its write outran the release's delete, so
          // delete again, against the revision it made.
          yield* attempt("release", () => shards.delete(shardKey(shardId), { previousSeq: revision })).pipe(Effect.ignore)
          return false
        }
        held(shardId, revision, sentAt)
        return true
      })

    const acquireOne = (address: string, shardId: string): Effect.Effect<boolean, PersistenceError> =>
      revisions.has(shardId) && stillValid(shardId) ? renew(address, shardId) : once(shardId, take(address, shardId))
    const take = (address: string, shardId: string) =>
      Effect.gen(function*() {
        if (revisions.has(shardId) && stillValid(shardId)) return yield* renewNow(address, shardId)
        drop(shardId)
        const key = shardKey(shardId)
        const sentAt = monotonicNow()
        let current = yield* decodeEntry(shards, key)
        // A holder that left the membership (stopping: it releases its leases right after its
        // entities stop) is given a moment to release, rather than a whole acquisition round.
        for (let waited = 0; current !== undefined && !members.has(keyToken(current.string())) && waited < leaverGraceMs; waited += 50) {
          yield* Effect.sleep("50 millis")
          current = yield* decodeEntry(shards, key)
        }
        if (current !== undefined) {
          // Someone's live lease (ours from a previous life of this address counts as free only
          // once it ages out: that process might still be running, frozen).
          return false
        }
        const revision = yield* unlessLost(attempt("take", () => shards.create(key, address)))
        if (revision === undefined) return false
        held(shardId, revision, sentAt)
        takenAt.set(shardId, monotonicNow())
        metrics.shardMoved("acquired")
        return true
      })

    const renewAll = (address: string, shardIds: ReadonlyArray<string>) =>
      Effect.forEach(shardIds, (shardId) => {
        if (!stillValid(shardId) || !revisions.has(shardId)) {
          lose(shardId)
          return Effect.succeed(undefined)
        }
        return Effect.map(renew(address, shardId), (renewed) => renewed ? shardId : undefined)
      }, { concurrency: 64 }).pipe(Effect.map((renewed) => renewed.filter((id) => id !== undefined)))

    const release = (shardId: string) =>
      Effect.gen(function*() {
        const revision = revisions.get(shardId)
        drop(shardId)
        if (revision === undefined) return
        metrics.shardMoved("released")
        yield* attempt("release", () => shards.delete(shardKey(shardId), { previousSeq: revision })).pipe(Effect.ignore)
      })

    const scope = yield* Effect.scope
    /**
     * When each lease was taken. The renewer keeps a lease Sharding has not listed yet for a
     * while (its next refresh, or the next acquisition round when this one ran over, claims it);
     * one it never claims lapses.
     */
    const takenAt = new Map<string, number>()
    const unclaimedGraceMs = 3_000

    /** The leases Sharding asked about last, and the address they are held for. */
    let renewing: { readonly address: string; readonly shardIds: ReadonlyArray<string> } | undefined

    /**
     * One round of renewals: the leases Sharding still holds (those it stopped
     * asking about lapse, or were released), then the runner's key. The key
     * after the leases: when a dead runner drops out of the membership, its
     * leases have already lapsed, so the survivors take its shards at once.
     */
    const renewRound = Effect.gen(function*() {
      const round = renewing
      if (round === undefined) return
      const startedAt = monotonicNow()
      const listed = new Set(round.shardIds)
      for (const [shardId, at] of takenAt) {
        if (listed.has(shardId) || startedAt - at > unclaimedGraceMs) takenAt.delete(shardId)
        else if (revisions.has(shardId)) listed.add(shardId)
      }
      const renewed = yield* renewAll(round.address, [...listed])
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
      shardKey,
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
        const keys: Array<string> = []
        for await (const key of await runners.keys("runner.*")) keys.push(key)
        const entries = await Promise.all(keys.map((key) => runners.get(key)))
        const live = entries.filter((entry) => entry !== null && entry.operation === "PUT")
        metrics.view.nodes = live.length
        members = new Set(live.map((entry) => entry!.key.slice("runner.".length)))
        memberEntries = live.flatMap((entry): Array<RunnerDeaths.Member> => {
          try {
            const { address, machineId, shards: held } = entry!.json<RunnerEntry>()
            if (typeof address !== "string") return []
            return [{ address, key: entry!.key, revision: entry!.revision, machineId, shards: Array.isArray(held) ? held : [] }]
          } catch {
            return []
          }
        })
        health.selfListed = [...registered.keys()].some((address) => keys.includes(runnerKey(address)))
        return entries.flatMap((entry): Array<readonly [string, boolean]> => {
          if (entry === null || entry.operation !== "PUT") return []
          try {
            const { runner, healthy } = entry.json<RunnerEntry>()
            return [[runner, healthy]]
          } catch {
            return []
          }
        })
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
          if (renewing?.address === address) renewing = undefined
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
          const current = yield* decodeEntry(runners, runnerKey(address))
          if (current === undefined) return
          const entry = { ...current.json<RunnerEntry>(), healthy }
          yield* attempt("set health", () => runners.update(runnerKey(address), JSON.stringify(entry), current.revision)).pipe(Effect.ignore)
        }),
      // Answers within `acquireBudgetMs` with the leases taken so far. Sharding gives an
      // acquisition 1 s (min(1 s, lease / 3)) and takes none of its shards when it runs over,
      // so on a busy node a round that waited for every lease could fail again and again. The
      // rest finish in the background; the next round finds them held and only renews them.
      acquire: (address, shardIds) =>
        Effect.gen(function*() {
          const taken: Array<string> = []
          const all = Effect.forEach(shardIds, (shardId) =>
            acquireOne(address, shardId).pipe(
              Effect.map((ok) => {
                if (ok) taken.push(shardId)
              }),
              Effect.ignore
            ), {
            // All at once: waits for leavers overlap instead of adding up.
            concurrency: "unbounded",
            discard: true
          })
          const round = yield* Effect.forkIn(all, scope)
          yield* Fiber.await(round).pipe(Effect.timeoutOption(acquireBudgetMs))
          return [...taken]
        }),
      // Answered from the lease book at once; the renewer below keeps the book current. Sharding
      // gives a refresh 1 s (min(1 s, lease / 3)) and drops every shard when it runs over,
      // which a busy 2-core node (ffmpeg start-ups, ~10 ms per spawn) did not always manage
      // when the renewals ran inside it. Each lease still ends at its own local deadline.
      refresh: (address, shardIds) =>
        Effect.sync(() => {
          renewing = { address, shardIds }
          return shardIds.filter((shardId) => {
            if (revisions.has(shardId) && stillValid(shardId)) return true
            lose(shardId)
            return false
          })
        }),
      release: (_address, shardId) => release(shardId),
      releaseAll: (_address) =>
        Effect.suspend(() => {
          // Stopping: nothing is renewed any more; what a release misses lapses within the lease.
          renewing = undefined
          return Effect.forEach([...revisions.keys()], release, { concurrency: 64, discard: true })
        })
    })
    return { storage, leases, health } satisfies NatsRunnerStorage
  })

/**
 * `RunnerStorage` and the `ShardLeases` it keeps, from one NATS client; and
 * the `cluster` readiness check: connected, listed in the membership, and
 * renewing within the lease.
 */
export const layer = (timing: LeaseTiming = defaultLeaseTiming) =>
  Layer.effectContext(
    Effect.gen(function*() {
      const { health, leases, storage } = yield* make(timing)
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
      return Context.make(RunnerStorage.RunnerStorage, storage).pipe(Context.add(ShardLeases, leases))
    })
  )
