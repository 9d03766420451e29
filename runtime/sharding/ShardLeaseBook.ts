/**
 * The shard leases this node holds in the `<ns>_shards` KV bucket, and its
 * own view of them (ShardLeases): taking a lease with `create` (succeeds only
 * while no live entry exists), renewing it with `update` against the revision
 * this node wrote last (compare-and-set: a lost lease is never renewed), and
 * releasing it with a revision-checked delete. One write per lease at a time.
 *
 * A lease is believed until `renewal sent + lease − margin` on the monotonic
 * clock, so this node stops acting on a shard before NATS can hand it to
 * anyone else.
 */
import type { KV } from "@nats-io/kv"
import { Deferred, Effect, Exit } from "effect"
import { PersistenceError } from "effect/cluster/ClusterError"
import type { ClusterMetrics } from "../metrics/ClusterMetrics.ts"
import * as Notice from "./Notice.ts"
import { makeLeaseTable, monotonicNow } from "./ShardLeases.ts"

export interface LeaseTiming {
  /** Max age of the KV entries: a lease not renewed within it expires in NATS. */
  readonly leaseMs: number
  /** The owner stops this long before NATS can expire its lease. */
  readonly marginMs: number
  /** Pause between two rounds of renewals (a round renews every held lease and the runner key). */
  readonly renewEveryMs: number
  /** How often a take waiting for a leaver reads the lease again when no release is announced. */
  readonly leaverPollMs?: number
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

/**
 * How long an acquisition waits for a lease whose holder left the membership.
 * A node stopping with SIGTERM unregisters first (the survivors start taking
 * its shards at once), then stops each camera just before its next keyframe
 * (up to 1.5 s later), ffmpeg closes its last chunk, the live tail is saved,
 * and the camera's lease is released: 0.3-2 s after the signal, more on a
 * loaded machine. It renews the leases it still holds meanwhile; one that
 * lapses instead (a leaver that crashed mid-stop) is taken as soon as it
 * does, within a lease. A take that gives up is reported lost, and Sharding
 * stops the actors it started for the shard.
 */
const leaverGraceMs = 4_000

/**
 * An acquisition round answers within this with what it took so far (and
 * what it is taking from leavers); the rest finish in the background and
 * the next round claims them. Sharding gives a round min(1 s, lease / 3) =
 * 1 s and takes nothing from a round that runs over.
 */
export const acquireBudgetMs = 850

/** KV keys allow `[-/_=.a-zA-Z0-9]`. */
export const keyToken = (value: string) => value.replace(/[^A-Za-z0-9_=-]/g, "_")
export const runnerKey = (address: string) => `runner.${keyToken(address)}`
/** `group:id` → `shard.<group>.<id>` */
export const shardKey = (shardId: string) => {
  const colon = shardId.lastIndexOf(":")
  return `shard.${keyToken(shardId.slice(0, colon))}.${shardId.slice(colon + 1)}`
}

const isWrongSequence = (cause: unknown) => /wrong last sequence|key exists/i.test(String(cause))

export const attempt = <A>(operation: string, run: () => Promise<A>) =>
  Effect.tryPromise({
    try: run,
    catch: (cause) => new PersistenceError({ cause: new Error(`${operation}: ${String(cause)}`) })
  })

/** Reads `key`, answering undefined when it is absent or deleted. */
export const readEntry = (kv: KV, key: string) =>
  attempt(`get ${key}`, () => kv.get(key)).pipe(
    Effect.map((entry) => entry === null || entry.operation !== "PUT" ? undefined : entry)
  )

export interface LeaseBookOptions {
  readonly shards: KV
  readonly timing: LeaseTiming
  readonly metrics: ClusterMetrics["Service"]
  /** Whether the runner with this key token is in the membership as last read. */
  readonly isMember: (token: string) => boolean
  /** Tells the other nodes that this node released a lease (they may be waiting for it). */
  readonly announceRelease?: (shardId: string) => void
}

/**
 * A take waiting for a leaver tries to take the lease as soon as the leaver
 * announces that it released it, and reads it again at this interval
 * otherwise (an announcement lost, or a lease that lapses instead). Reading
 * every 50 ms instead, each survivor of a SIGTERM read ~50 leases 20 times a
 * second, on a CPU that was also starting the leaver's cameras.
 */
const defaultLeaverPollMs = 250

export const makeLeaseBook = ({ announceRelease, isMember, metrics, shards, timing }: LeaseBookOptions) => {
  const leases = makeLeaseTable()
  /** The revision of the lease entry this node wrote last, per held shard. */
  const revisions = new Map<string, number>()
  /**
   * When each lease was taken. The renewer keeps a lease Sharding has not listed yet for a
   * while (its next refresh, or the next acquisition round when this one ran over, claims it);
   * one it never claims lapses.
   */
  const takenAt = new Map<string, number>()
  const unclaimedGraceMs = 3_000
  /** The shards being taken from a leaver: waiting for its release, then creating the lease. */
  const awaitingLeaver = new Set<string>()
  /** Fired each time a take starts waiting for a leaver. */
  const startedWaiting = Notice.make()
  /** Per shard a take waits on: done when another node announces it released the lease. */
  const releaseSignals = new Map<string, Deferred.Deferred<void>>()
  const releasedElsewhere = (shardId: string) => {
    const signal = releaseSignals.get(shardId)
    if (signal === undefined) return
    releaseSignals.delete(shardId)
    Deferred.doneUnsafe(signal, Exit.void)
  }
  /** Armed before the lease is read, so an announcement between the read and the wait is not missed. */
  const armRelease = (shardId: string) => {
    let signal = releaseSignals.get(shardId)
    if (signal === undefined) {
      signal = Deferred.makeUnsafe<void>()
      releaseSignals.set(shardId, signal)
    }
    return signal
  }
  /** True when the release was announced within `ms`. */
  const awaitRelease = (signal: Deferred.Deferred<void>, ms: number) =>
    Deferred.await(signal).pipe(Effect.timeout(ms), Effect.as(true), Effect.orElseSucceed(() => false))

  /** Marks a lease renewed by a write sent at `sentAt` that NATS accepted at `revision`. */
  const held = (shardId: string, revision: number, sentAt: number) => {
    const taken = !leases.deadlines.has(shardId)
    revisions.set(shardId, revision)
    leases.deadlines.set(shardId, sentAt + timing.leaseMs - timing.marginMs)
    if (taken) leases.taken.fire()
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
      let announced = armRelease(shardId)
      let current = yield* readEntry(shards, key)
      // A holder that left the membership (stopping: it releases its leases right after its
      // entities stop) is given a moment to release, rather than a whole acquisition round.
      if (current !== undefined && !isMember(keyToken(current.string()))) {
        awaitingLeaver.add(shardId)
        startedWaiting.fire()
        current = yield* Effect.gen(function*() {
          let entry = current
          const until = monotonicNow() + leaverGraceMs
          const pollMs = timing.leaverPollMs ?? defaultLeaverPollMs
          while (entry !== undefined && !isMember(keyToken(entry.string())) && monotonicNow() < until) {
            // Announced: straight to the create below (it fails if a third node was quicker).
            if (yield* awaitRelease(announced, Math.min(pollMs, Math.max(1, until - monotonicNow())))) return undefined
            announced = armRelease(shardId)
            entry = yield* readEntry(shards, key)
          }
          return entry
        })
      }
      if (current !== undefined) {
        // Someone's live lease (ours from a previous life of this address counts as free only
        // once it ages out: that process might still be running, frozen).
        return false
      }
      const sentAt = monotonicNow()
      const revision = yield* unlessLost(attempt("take", () => shards.create(key, address)))
      if (revision === undefined) return false
      held(shardId, revision, sentAt)
      takenAt.set(shardId, monotonicNow())
      metrics.shardMoved("acquired")
      return true
    }).pipe(
      // Still being taken until the create has answered: a refresh in between must not report the
      // shard lost (Sharding would stop the actors it started for it, then start them again).
      Effect.ensuring(Effect.sync(() => void awaitingLeaver.delete(shardId)))
    )

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
      yield* attempt("release", () => shards.delete(shardKey(shardId), { previousSeq: revision })).pipe(
        Effect.andThen(Effect.sync(() => announceRelease?.(shardId))),
        Effect.ignore
      )
    })

  /**
   * Held with a valid local deadline, or being taken from a leaver (answers Sharding's refresh);
   * one that is neither is dropped as lost.
   */
  const stillHeld = (shardId: string) => {
    if (revisions.has(shardId) && stillValid(shardId)) return true
    if (awaitingLeaver.has(shardId)) return true
    lose(shardId)
    return false
  }

  /**
   * The leases a round of renewals covers: those Sharding listed, plus those taken a moment ago
   * that it has not listed yet (its next refresh, or the next acquisition round when this one ran
   * over, claims them); one it never claims within the grace lapses.
   */
  const toRenew = (listedIds: ReadonlyArray<string>, now: number) => {
    const listed = new Set(listedIds)
    for (const [shardId, at] of takenAt) {
      if (listed.has(shardId) || now - at > unclaimedGraceMs) takenAt.delete(shardId)
      else if (revisions.has(shardId)) listed.add(shardId)
    }
    return [...listed]
  }

  return {
    leases,
    acquireOne,
    renewAll,
    release,
    stillHeld,
    toRenew,
    /** Whether the take of this shard is waiting for a leaver to release its lease. */
    isAwaitingLeaver: (shardId: string) => awaitingLeaver.has(shardId),
    /** Done when a take next starts waiting for a leaver (read it before checking `isAwaitingLeaver`). */
    startedWaiting: startedWaiting.next,
    /** Another node announced that it released this lease: a take waiting for it tries to take it now. */
    releasedElsewhere,
    /** Every lease this node holds now. */
    heldIds: () => [...revisions.keys()]
  }
}
