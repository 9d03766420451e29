/**
 * Fast failover for runners whose process is gone (SIGKILL, a crash, the
 * OOM killer): their membership and shard leases are deleted as soon as the
 * death is proven, so the survivors take the shards within a second instead
 * of waiting up to a lease (4 s) for NATS to age the entries out.
 *
 * A runner is declared dead only on two independent proofs:
 *
 * - NATS: nothing answers its liveness subject (`<ns>.alive.<runner>`), so the
 *   server holds no connection of it. The runner answers from its
 *   registration until its storage closes, after its leases are released.
 * - its host: a TCP connect to the HTTP address it advertises is refused, so
 *   no process listens there. Only an address that this node has seen accept
 *   a connection while that runner was a member counts: a node advertising a
 *   wrong address is never declared dead, it keeps its leases.
 *
 * A runner cut off from NATS still accepts connections; a frozen one
 * (SIGSTOP) keeps its listening socket (the kernel completes the handshake
 * for it); a machine that vanished answers the connect with nothing. None of
 * them is proven dead: their leases lapse as before, so a live process never
 * has a shard taken from it early. The deletes are compare-and-set against
 * the revisions read, so a lease someone took meanwhile is left alone.
 */
import type { KV } from "@nats-io/kv"
import type { NatsConnection, Subscription } from "@nats-io/transport-node"
import { Effect } from "effect"
import { type ConnectOutcome, connectOutcome } from "../net/Reachable.ts"
import { listKeys } from "./NatsClient.ts"
import { nodeKey } from "./NodeDirectory.ts"
import { shardKey } from "./ShardLeaseBook.ts"

/** A member of the cluster as the storage last read it. */
export interface Member {
  /** The encoded runner address, `host:port`; the host is the node id. */
  readonly address: string
  /** The KV key of its membership entry and that entry's revision. */
  readonly key: string
  readonly revision: number
  readonly machineId: number
  /** The shard leases it listed in its entry (`group:id`), as of its last round of renewals. */
  readonly shards: ReadonlyArray<string>
}

export interface RunnerDeathsOptions {
  readonly connection: NatsConnection
  readonly namespace: string
  readonly runners: KV
  readonly shards: KV
  /** Where each node advertises its HTTP address (NodeDirectory's bucket). */
  readonly nodes: KV
  /** The members to watch (this node's own runners excluded). */
  readonly others: () => ReadonlyArray<Member>
  /** How often every other member is checked. */
  readonly everyMs: number
  /** Called once a dead runner's entries are deleted, with how many leases were freed. */
  readonly onBuried: (address: string, leases: number, tookMs: number) => Effect.Effect<void>
}

const subjectToken = (address: string) => address.replace(/[^A-Za-z0-9_-]/g, "_")
const aliveSubject = (namespace: string, address: string) => `${namespace}.alive.${subjectToken(address)}`

/** Answers `address`'s liveness subject while the scope is open. */
export const answerAlive = (connection: NatsConnection, namespace: string, address: string) =>
  Effect.acquireRelease(
    Effect.sync((): Subscription =>
      connection.subscribe(aliveSubject(namespace, address), {
        callback: (error, msg) => {
          if (error === null) msg.respond()
        }
      })
    ),
    (subscription) => Effect.sync(() => subscription.unsubscribe())
  )

type Liveness = "answers" | "no-responders" | "unknown"

/**
 * "no-responders" when the server knows no subscriber. A request sent just before the runner died
 * times out instead (it was delivered, never answered): the next round asks again.
 */
const askNats = (connection: NatsConnection, namespace: string, address: string, timeoutMs: number): Effect.Effect<Liveness> =>
  Effect.promise(() =>
    connection.request(aliveSubject(namespace, address), undefined, { timeout: timeoutMs }).then(
      (): Liveness => "answers",
      (cause: unknown): Liveness => {
        const error = cause as { isNoResponders?: () => boolean; name?: string }
        if (error.name === "NoRespondersError" || error.isNoResponders?.() === true) return "no-responders"
        return "unknown"
      }
    )
  )

/** What a TCP connect to the host and port of `url` gets (`no-answer` for a malformed URL). */
export const connectTo = (url: string, timeoutMs = 1_000): Effect.Effect<ConnectOutcome> =>
  Effect.suspend(() => {
    let target: URL
    try {
      target = new URL(url)
    } catch {
      return Effect.succeed("no-answer" as const)
    }
    const port = Number(target.port || (target.protocol === "https:" ? 443 : 80))
    const host = target.hostname.replace(/^\[|\]$/g, "")
    return connectOutcome(host, port, timeoutMs)
  })

const attempt = <A>(run: () => Promise<A>) => Effect.tryPromise(run).pipe(Effect.option)

/** Checks every other member every `everyMs`, forever; deletes the entries of those proven dead. */
export const watch = (options: RunnerDeathsOptions) => {
  const { connection, namespace, nodes, runners, shards } = options
  /** Buried recently: not checked again until its entry is gone from the membership. */
  const buried = new Map<string, number>()
  /** Per member, the HTTP address it advertises that accepted a connection from here. */
  const vouched = new Map<string, string>()

  const advertised = (member: Member) =>
    Effect.map(attempt(() => nodes.get(nodeKey(member.address.slice(0, member.address.lastIndexOf(":"))))), (entry) =>
      entry._tag === "None" || entry.value === null || entry.value.operation !== "PUT" ? undefined : entry.value.string())

  const provenDead = (member: Member) =>
    Effect.gen(function*() {
      if (!vouched.has(member.address)) {
        // First sight: the advertised address must reach the runner before its refusal can mean anything.
        const url = yield* advertised(member)
        if (url !== undefined && (yield* connectTo(url)) === "connected") vouched.set(member.address, url)
        return false
      }
      if ((yield* askNats(connection, namespace, member.address, options.everyMs)) !== "no-responders") return false
      const url = yield* advertised(member)
      if (url !== vouched.get(member.address)) {
        // It advertises somewhere else now (a restart): vouch for that address first.
        vouched.delete(member.address)
        return false
      }
      return (yield* connectTo(url!)) === "refused"
    })

  /** Deletes `key`'s lease if `address` holds it, against the revision read. */
  const free = (key: string, address: string) =>
    Effect.gen(function*() {
      const lease = yield* attempt(() => shards.get(key))
      if (lease._tag === "None" || lease.value === null || lease.value.operation !== "PUT") return false
      if (lease.value.string() !== address) return false
      const revision = lease.value.revision
      return (yield* attempt(() => shards.delete(key, { previousSeq: revision })))._tag === "Some"
    })

  const bury = (member: Member) =>
    Effect.gen(function*() {
      const startedAt = performance.now()
      // The leases it listed first, all at once, then its membership entry: the survivors
      // reassign its shards when it leaves the membership, and then find them free in one round.
      const listed = yield* Effect.forEach(member.shards, (shardId) => free(shardKey(shardId), member.address), {
        concurrency: "unbounded"
      })
      // Against the revision that was read: a runner that came back meanwhile wrote a newer one.
      const removed = yield* attempt(() => runners.delete(member.key, { previousSeq: member.revision }))
      if (removed._tag === "None") return
      yield* attempt(() => runners.delete(`machine.${member.machineId}`))
      // Leases taken after its last entry was written: found by a scan of the bucket.
      const keys = yield* attempt(() => listKeys(shards, ">"))
      const known = new Set(member.shards.map(shardKey))
      const rest = yield* Effect.forEach(
        keys._tag === "Some" ? keys.value.filter((key) => !known.has(key)) : [],
        (key) => free(key, member.address),
        { concurrency: 32 }
      )
      const freed = [...listed, ...rest].filter(Boolean).length
      yield* options.onBuried(member.address, freed, Math.round(performance.now() - startedAt))
    })

  /** Members being checked or buried now: a slow check of one never delays the others. */
  const busy = new Set<string>()
  const check = (member: Member) =>
    Effect.gen(function*() {
      if (!(yield* provenDead(member))) return
      buried.set(member.address, member.revision)
      yield* bury(member)
    }).pipe(Effect.ensuring(Effect.sync(() => busy.delete(member.address))))

  const round = Effect.gen(function*() {
    const others = options.others()
    const listed = new Set(others.map((member) => member.address))
    for (const address of buried.keys()) if (!listed.has(address)) buried.delete(address)
    for (const address of vouched.keys()) if (!listed.has(address)) vouched.delete(address)
    for (const member of others) {
      if (busy.has(member.address) || buried.get(member.address) === member.revision) continue
      busy.add(member.address)
      yield* Effect.forkScoped(check(member))
    }
  })

  return round.pipe(
    Effect.andThen(Effect.sleep(options.everyMs)),
    Effect.forever
  )
}
