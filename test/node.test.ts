/**
 * A whole node as a user runs it: `vms start` on the embedded defaults
 * (embedded Postgres under the data dir), readiness, metrics, shutdown on
 * SIGINT/SIGTERM with nothing left behind, restart after SIGKILL, bad
 * configuration, `vms migrate` and every `--help`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import WebSocket from "ws"
import { requireBinary } from "./support/Binaries.ts"
import { eventually } from "./support/Eventually.ts"
import { processesMentioning, spawnNpmStart, spawnVms } from "./support/NodeProcess.ts"
import { testDatabaseUrl } from "./support/TestDatabase.ts"
import { tempDir } from "./support/TestNode.ts"

const get = (url: string) =>
  Effect.tryPromise(async () => {
    const response = await fetch(url)
    return { status: response.status, body: await response.text() }
  })

const waitReady = (baseUrl: string, timeoutMs: number) =>
  eventually(
    `${baseUrl}/health/ready answers 200`,
    get(`${baseUrl}/health/ready`).pipe(
      Effect.map((r) => (r.status === 200 ? r : undefined)),
      Effect.catch(() => Effect.succeed(undefined))
    ),
    timeoutMs,
    100
  )

const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const started = Date.now()
    const value = yield* effect
    return [value, Date.now() - started] as const
  })

/**
 * How long this machine's Node takes from spawn to running JavaScript: the
 * slowest of three, and half as much again, since the machine's load moves
 * between the probe and the signal (a CI run once signalled a node that had
 * not run a line yet, and the kernel's default action ended it).
 */
const nodeStartMs = Effect.promise(async () => {
  // A TypeScript entry whose first line runs, as `runtime/bin/vms.ts`'s first line installs its handler.
  const entry = path.join(await fs.promises.mkdtemp(path.join(os.tmpdir(), "vms-up-")), "up.ts")
  await fs.promises.writeFile(entry, "process.stdout.write(\"up\")\n")
  let slowest = 0
  for (let i = 0; i < 3; i++) {
    const started = performance.now()
    await new Promise<void>((resolve) => {
      const child = spawn(process.execPath, [entry], { stdio: ["ignore", "pipe", "ignore"] })
      child.stdout.once("data", () => resolve())
      child.once("exit", () => resolve())
    })
    slowest = Math.max(slowest, performance.now() - started)
  }
  return slowest * 1.5
})

describe("vms start on embedded defaults", () => {
  it.live("is ready within 20 s, serves health and metrics, and stops cleanly on SIGINT", () =>
    Effect.gen(function*() {
      const promtool = requireBinary("promtool")
      const dataDir = yield* tempDir("embedded")
      const vms = yield* spawnVms(["start"], { VMS_DATA_DIR: dataDir, VMS_HTTP_PORT: "0" })
      const [baseUrl] = yield* timed(vms.httpUrl.pipe(Effect.timeout("20 seconds")))

      // Not ready until the database and shards are: 503 with reasons, or 200 once they are.
      const early = yield* get(`${baseUrl}/health/ready`)
      assert.include([200, 503], early.status)
      if (early.status === 503) assert.include(early.body, "reason")

      const [, readyMs] = yield* timed(waitReady(baseUrl, 20_000))
      assert.isBelow(readyMs, 20_000)
      const ready = JSON.parse((yield* get(`${baseUrl}/health/ready`)).body)
      assert.deepStrictEqual(ready.checks.map((c: { name: string }) => c.name), ["api", "database", "shards", "store"])

      const live = yield* get(`${baseUrl}/health/live`)
      assert.strictEqual(live.status, 200)
      assert.isTrue(fs.existsSync(path.join(dataDir, "postgres", "PG_VERSION")), "embedded Postgres data under the data dir")

      const metrics = yield* get(`${baseUrl}/metrics`)
      assert.strictEqual(metrics.status, 200)
      assert.include(metrics.body, "vms_build_info")
      const check = spawnSync(promtool, ["check", "metrics"], { input: metrics.body, encoding: "utf8" })
      assert.strictEqual(check.status, 0, check.stdout + check.stderr)

      // Logs are structured: one JSON object per line.
      for (const line of vms.output().split("\n").filter((l) => l.startsWith("{"))) JSON.parse(line)

      vms.child.kill("SIGINT")
      const [code, stopMs] = yield* timed(vms.exited.pipe(Effect.timeout("5 seconds")))
      assert.strictEqual(code, 0, vms.output())
      assert.isBelow(stopMs, 5_000)
      assert.deepStrictEqual(yield* processesMentioning(dataDir), [], "no postgres or ffmpeg left behind")
    }))

  it.live("npm start: Ctrl-C (SIGINT to the whole process group) exits 0 within 5 s", () =>
    Effect.gen(function*() {
      const dataDir = yield* tempDir("npmstart")
      const npm = yield* spawnNpmStart({ VMS_DATA_DIR: dataDir, VMS_HTTP_PORT: "0" })
      yield* waitReady(yield* npm.httpUrl.pipe(Effect.timeout("20 seconds")), 20_000)
      process.kill(-npm.child.pid!, "SIGINT")
      const [code, stopMs] = yield* timed(npm.exited.pipe(Effect.timeout("5 seconds")))
      assert.strictEqual(code, 0, npm.output())
      assert.isBelow(stopMs, 5_000)
      assert.deepStrictEqual(yield* processesMentioning(dataDir), [])
    }))

  it.live("a Ctrl-C at any moment of startup exits 0 and leaves nothing running", () =>
    Effect.gen(function*() {
      // Loading modules, initdb, postgres start, migrations: wherever the signal lands, counted from
      // when Node runs JavaScript at all (0.2-0.4 s after spawn on some machines; before that the
      // kernel's default action applies to any Node program).
      const startMs = yield* nodeStartMs
      for (const delayMs of [0, 450, 950, 1450]) {
        const dataDir = yield* tempDir(`early-${delayMs}`)
        const vms = yield* spawnVms(["start"], { VMS_DATA_DIR: dataDir, VMS_HTTP_PORT: "0" })
        yield* Effect.sleep(Math.ceil(startMs) + delayMs)
        vms.child.kill("SIGINT")
        assert.strictEqual(yield* vms.exited.pipe(Effect.timeout("5 seconds")), 0, `after ${delayMs} ms: ${vms.output()}`)
        assert.deepStrictEqual(yield* processesMentioning(dataDir), [], `after ${delayMs} ms`)
      }
    }))

  it.live("restarts on the same data after SIGKILL, and stops on SIGTERM within 5 s with an event subscriber and a poller connected", () =>
    Effect.gen(function*() {
      const dataDir = yield* tempDir("restart")
      const first = yield* spawnVms(["start"], { VMS_DATA_DIR: dataDir, VMS_HTTP_PORT: "0" })
      yield* waitReady(yield* first.httpUrl, 20_000)
      first.child.kill("SIGKILL")
      yield* first.exited
      // Postgres outlives a SIGKILLed node; the next start must take over the data dir anyway.
      assert.isNotEmpty(yield* processesMentioning(path.join(dataDir, "postgres")))

      const second = yield* spawnVms(["start", "--data-dir", dataDir, "--http-port", "0"])
      const baseUrl = yield* second.httpUrl
      yield* waitReady(baseUrl, 20_000)
      // A browser or client subscribed to events: told the server is going away, and no reason to
      // wait (the node took 20 s to stop with one connected).
      const subscriber = new WebSocket(`${baseUrl.replace("http", "ws")}/ws`)
      const closed = new Promise<number>((resolve) => subscriber.once("close", (code) => resolve(code)))
      yield* Effect.promise(() => new Promise<void>((resolve, reject) => {
        subscriber.once("open", () => resolve())
        subscriber.once("error", reject)
      }))
      // And a client that keeps a request in flight on one keep-alive connection (an HLS player
      // polling, a monitor): Node serves such a connection for ever after `close`, and the node
      // never exited.
      const poller = busyKeepAlive(baseUrl)
      yield* eventually("the poller is answered", Effect.sync(() => poller.answers() >= 2 ? true : undefined), 5_000, 10)
      second.child.kill("SIGTERM")
      const exited = yield* second.exited.pipe(Effect.timeout("5 seconds"), Effect.ensuring(Effect.sync(poller.stop)))
      assert.strictEqual(exited, 0, second.output())
      assert.strictEqual(yield* Effect.promise(() => closed), 1001)
      assert.deepStrictEqual(yield* processesMentioning(dataDir), [])
    }))
})

/**
 * One keep-alive connection that always has a request in flight: each a GET
 * whose headers end 200 ms after they start, the next sent as soon as the
 * answer is in.
 */
const busyKeepAlive = (baseUrl: string) => {
  const url = new URL(baseUrl)
  const socket = net.connect(Number(url.port), url.hostname)
  let answers = 0
  let received = Buffer.alloc(0)
  let timer: NodeJS.Timeout | undefined
  const send = () => {
    if (!socket.writable) return
    socket.write(`GET /metrics HTTP/1.1\r\nHost: ${url.host}\r\n`)
    timer = setTimeout(() => socket.writable && socket.write("\r\n"), 200)
  }
  socket.on("connect", send)
  socket.on("error", () => {})
  socket.on("data", (data) => {
    received = Buffer.concat([received, data])
    while (true) {
      const headerEnd = received.indexOf("\r\n\r\n")
      if (headerEnd === -1) return
      const head = received.subarray(0, headerEnd).toString()
      const length = /content-length: *(\d+)/i.exec(head)?.[1]
      // A stopping node answers 503 with a chunked body: up to its last (empty) chunk.
      const lastChunk = received.indexOf("0\r\n\r\n", headerEnd + 4)
      const end = length !== undefined
        ? headerEnd + 4 + Number(length)
        : !/transfer-encoding: *chunked/i.test(head)
        ? headerEnd + 4
        : lastChunk === -1
        ? Infinity
        : lastChunk + 5
      if (received.length < end) return
      received = received.subarray(end)
      answers++
      send()
    }
  })
  return {
    answers: () => answers,
    stop: () => {
      clearTimeout(timer)
      socket.destroy()
    }
  }
}

describe("one data dir, one node", () => {
  it.live("a second node on a data dir in use refuses to start, naming the holder", () =>
    Effect.gen(function*() {
      const dataDir = yield* tempDir("locked")
      const first = yield* spawnVms(["start"], { VMS_DATA_DIR: dataDir, VMS_HTTP_PORT: "0" })
      yield* waitReady(yield* first.httpUrl, 20_000)
      const second = yield* spawnVms(["start"], { VMS_DATA_DIR: dataDir, VMS_HTTP_PORT: "0" })
      assert.strictEqual(yield* second.exited.pipe(Effect.timeout("10 seconds")), 1)
      assert.strictEqual(second.stderr().trim(), `vms: DataDirInUse: ${dataDir} is in use by another node (pid ${first.child.pid})`)
      // The first node is unharmed.
      yield* waitReady(yield* first.httpUrl, 2_000)
      first.child.kill("SIGINT")
      assert.strictEqual(yield* first.exited.pipe(Effect.timeout("5 seconds")), 0)
    }))
})

describe("vms configuration errors", () => {
  const refuse = (env: Record<string, string>, args: ReadonlyArray<string> = []) =>
    Effect.gen(function*() {
      const dataDir = yield* tempDir("badconfig")
      const vms = yield* spawnVms(["start", ...args], { VMS_DATA_DIR: dataDir, ...env })
      const code = yield* vms.exited.pipe(Effect.timeout("10 seconds"))
      const lines = vms.stderr().trim().split("\n")
      return { code, lines, dataDir }
    })

  it.live("VMS_HTTP_PORT=abc exits non-zero with one line naming the variable", () =>
    Effect.gen(function*() {
      const { code, lines, dataDir } = yield* refuse({ VMS_HTTP_PORT: "abc" })
      assert.strictEqual(code, 2)
      assert.strictEqual(lines.length, 1)
      assert.match(lines[0]!, /VMS_HTTP_PORT.*"abc"/)
      assert.isFalse(fs.existsSync(path.join(dataDir, "postgres")), "nothing was started")
    }))

  it.live("a malformed VMS_DATABASE_URL exits non-zero with one line naming it", () =>
    Effect.gen(function*() {
      const { code, lines } = yield* refuse({ VMS_DATABASE_URL: "postgres//db:5432" })
      assert.strictEqual(code, 2)
      assert.strictEqual(lines.length, 1)
      assert.match(lines[0]!, /^vms: invalid configuration: VMS_DATABASE_URL /)
    }))

  it.live("a bad flag names the flag", () =>
    Effect.gen(function*() {
      const { code, lines } = yield* refuse({}, ["--http-port", "99999"])
      assert.strictEqual(code, 2)
      assert.match(lines[0]!, /--http-port/)
    }))
})

describe("vms commands", () => {
  it.live("vms migrate applies the schema once and is a no-op after", () =>
    Effect.gen(function*() {
      const url = yield* testDatabaseUrl
      for (let run = 0; run < 2; run++) {
        const vms = yield* spawnVms(["migrate"], { VMS_DATABASE_URL: url })
        assert.strictEqual(yield* vms.exited.pipe(Effect.timeout("30 seconds")), 0, vms.output())
        assert.include(vms.output(), run === 0 ? "applied migrations" : "schema is up to date")
      }
    }))

  it.live("every command answers --help", () =>
    Effect.gen(function*() {
      for (const command of [[], ["start"], ["migrate"]]) {
        const vms = yield* spawnVms([...command, "--help"])
        assert.strictEqual(yield* vms.exited, 0, vms.output())
        assert.include(vms.output(), "USAGE")
      }
    }))
})
