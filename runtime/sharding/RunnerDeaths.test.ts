/**
 * RunnerDeaths against a real NATS server: only a runner with no NATS
 * connection *and* a refused HTTP port (one that accepted a connection
 * before) is buried; its listed and unlisted leases are freed, nobody
 * else's; a runner that still answers on NATS (frozen), still accepts
 * connections (cut off from NATS) or advertises an address that never
 * reached it is left alone.
 */
import { assert, describe, it } from "@effect/vitest"
import { connect } from "@nats-io/transport-node"
import { Context, Effect, Layer, type Scope } from "effect"
import * as net from "node:net"
import { natsUrl, testNamespace } from "../../test/support/Nats.ts"
import { eventually } from "../../test/support/Eventually.ts"
import { freePort } from "../net/FreePort.ts"
import { NatsClient } from "./NatsClient.ts"
import { nodeKey } from "./NodeDirectory.ts"
import * as RunnerDeaths from "./RunnerDeaths.ts"
import { shardKey } from "./ShardLeaseBook.ts"

interface Listening {
  readonly port: number
  /** Connections accepted so far. */
  readonly accepted: () => number
  readonly close: Effect.Effect<void>
}

const listening: Effect.Effect<Listening, never, Scope.Scope> = Effect.gen(function*() {
  let accepted = 0
  const server = yield* Effect.callback<net.Server>((resume) => {
    const created = net.createServer((socket) => {
      accepted++
      socket.destroy()
    })
    created.listen(0, "127.0.0.1", () => resume(Effect.succeed(created)))
  })
  const close = Effect.callback<void>((resume) => {
    if (!server.listening) return resume(Effect.void)
    server.close(() => resume(Effect.void))
  })
  yield* Effect.addFinalizer(() => close)
  return { port: (server.address() as net.AddressInfo).port, accepted: () => accepted, close }
})

describe("RunnerDeaths", () => {
  it.live("a refused connect is told apart from one that is accepted", () =>
    Effect.gen(function*() {
      const server = yield* listening
      assert.strictEqual(yield* RunnerDeaths.connectTo(`http://127.0.0.1:${server.port}`), "connected")
      assert.strictEqual(yield* RunnerDeaths.connectTo(`http://127.0.0.1:${yield* freePort}`), "refused")
      assert.strictEqual(yield* RunnerDeaths.connectTo("not a url"), "no-answer")
    }).pipe(Effect.scoped))

  it.live("buries only the runner that is gone from NATS and refuses connections where it was reached before", () =>
    Effect.gen(function*() {
      const url = yield* natsUrl
      const namespace = testNamespace()
      const context = yield* Layer.build(NatsClient.layer({ url, namespace, name: "watcher" }))
      const nats = Context.get(context, NatsClient)
      const runners = yield* nats.bucket("runners", { maxAgeMs: 60_000 })
      const shards = yield* nats.bucket("shards", { maxAgeMs: 60_000 })
      const nodes = yield* nats.bucket("nodes", { maxAgeMs: 60_000 })

      // `frozen` still has its NATS connection (answered here by another connection) and a dead
      // port; `cutoff` has no NATS connection but its port accepts; `wrong` has no NATS connection
      // and advertises a port that never accepted; `dead` has no NATS connection and its port,
      // open at first, closes.
      const other = yield* Effect.acquireRelease(Effect.promise(() => connect({ servers: url })), (nc) => Effect.promise(() => nc.close()))
      yield* RunnerDeaths.answerAlive(other, namespace, "frozen:1")
      const open = yield* listening
      const dying = yield* listening
      const closedPort = yield* freePort
      const put = (kv: typeof runners, key: string, value: string) => Effect.promise(() => kv.put(key, value))
      yield* put(nodes, nodeKey("dead"), `http://127.0.0.1:${dying.port}`)
      yield* put(nodes, nodeKey("frozen"), `http://127.0.0.1:${closedPort}`)
      yield* put(nodes, nodeKey("cutoff"), `http://127.0.0.1:${open.port}`)
      yield* put(nodes, nodeKey("wrong"), `http://127.0.0.1:${closedPort}`)
      const member = (address: string, key: string, machineId: number, listed: ReadonlyArray<string>) =>
        Effect.map(put(runners, key, address), (revision): RunnerDeaths.Member => ({ address, key, revision, machineId, shards: listed }))
      const members = [
        yield* member("dead:3", "runner.dead_3", 7, ["default:1"]),
        yield* member("frozen:1", "runner.frozen_1", 8, ["default:4"]),
        yield* member("cutoff:2", "runner.cutoff_2", 9, ["default:5"]),
        yield* member("wrong:4", "runner.wrong_4", 10, ["default:6"])
      ]
      yield* put(runners, "machine.7", "dead:3")
      // default:2 was taken after dead's last entry (not listed); default:3 belongs to someone alive.
      for (const [shardId, owner] of [["default:1", "dead:3"], ["default:2", "dead:3"], ["default:3", "frozen:1"], ["default:4", "frozen:1"], ["default:5", "cutoff:2"], ["default:6", "wrong:4"]] as const) {
        yield* put(shards, shardKey(shardId), owner)
      }

      let rounds = 0
      const buried: Array<{ address: string; leases: number }> = []
      yield* RunnerDeaths.watch({
        connection: nats.connection,
        namespace,
        runners,
        shards,
        nodes,
        others: () => {
          rounds++
          return members
        },
        everyMs: 50,
        onBuried: (address, leases) => Effect.sync(() => void buried.push({ address, leases }))
      }).pipe(Effect.forkScoped)

      // `dead` is alive (its port accepts) until the watcher has reached it once; then its process goes.
      yield* eventually("the watcher reached dead's port", Effect.sync(() => dying.accepted() > 0 ? true : undefined), 10_000)
      assert.deepStrictEqual(buried, [])
      yield* dying.close
      yield* eventually("dead is buried", Effect.sync(() => buried.length > 0 ? true : undefined), 10_000)
      // Twenty more rounds: the others are checked again and again and still not buried.
      const after = rounds + 20
      yield* eventually("twenty more rounds", Effect.sync(() => rounds >= after ? true : undefined), 10_000)
      assert.deepStrictEqual(buried, [{ address: "dead:3", leases: 2 }])

      const get = (kv: typeof runners, key: string) =>
        Effect.map(Effect.promise(() => kv.get(key)), (entry) => entry?.operation === "PUT" ? entry.string() : undefined)
      assert.strictEqual(yield* get(runners, "runner.dead_3"), undefined)
      assert.strictEqual(yield* get(runners, "machine.7"), undefined)
      assert.strictEqual(yield* get(shards, shardKey("default:1")), undefined)
      assert.strictEqual(yield* get(shards, shardKey("default:2")), undefined)
      assert.strictEqual(yield* get(shards, shardKey("default:3")), "frozen:1")
      assert.strictEqual(yield* get(shards, shardKey("default:4")), "frozen:1")
      assert.strictEqual(yield* get(shards, shardKey("default:5")), "cutoff:2")
      assert.strictEqual(yield* get(runners, "runner.frozen_1"), "frozen:1")
      assert.strictEqual(yield* get(runners, "runner.cutoff_2"), "cutoff:2")
      assert.strictEqual(yield* get(runners, "runner.wrong_4"), "wrong:4")
      assert.strictEqual(yield* get(shards, shardKey("default:6")), "wrong:4")
    }).pipe(Effect.scoped))
})
