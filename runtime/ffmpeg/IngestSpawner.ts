/**
 * Starts the node's ffmpeg ingest processes through a small helper process
 * (`SpawnHelper.ts`), so the node itself never forks for them: during a
 * failover a survivor starts a dozen cameras at once, and each fork of the
 * node held its event loop (lease renewals, entities, HTTP) for 0.1–0.4 s on
 * this machine, from the main thread or a worker thread alike. The helper
 * forks cheaply; ffmpeg's stdout, stderr and fd 3 are sockets to this
 * node's spawn socket (an abstract Unix socket), so the node reads them
 * directly, as it would read pipes.
 *
 * A child is a scoped resource in its own process group: closing the scope
 * sends SIGTERM to the group, SIGKILL a second later if it is still there,
 * and waits for its exit. The helper dies with the node (even by SIGKILL) and
 * the children with the helper (`setpriv --pdeathsig` on both); a helper that
 * dies anyway ends its children's runs and a new one serves the next spawn.
 */
import { type Cause, Context, Deferred, Effect, Layer, Queue, Schema, type Scope, Stream } from "effect"
import { type ChildProcess, spawn as spawnProcess } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import { fileURLToPath } from "node:url"

export class SpawnError extends Schema.TaggedError<SpawnError>()("SpawnError", {
  message: Schema.String
}) {}

export interface SpawnCommand {
  readonly file: string
  readonly args: ReadonlyArray<string>
  readonly cwd: string
  /** Scheduling priority (nice) set right after the spawn. */
  readonly niceness: number
}

export interface IngestChild {
  readonly pid: number
  readonly stdout: Stream.Stream<Uint8Array>
  readonly stderr: Stream.Stream<Uint8Array>
  readonly fd3: Stream.Stream<Uint8Array>
  /** Once it has exited and its pipes are drained: the code, or 128 + the signal's number. */
  readonly exitCode: Effect.Effect<number>
  /** Signals the process group, then SIGKILL after `forceKillAfterMs` unless it exited; waits for the exit. */
  readonly kill: (signal: NodeJS.Signals, forceKillAfterMs: number) => Effect.Effect<void>
}

type FromHelper =
  | { readonly id: number; readonly t: "spawned"; readonly pid: number }
  | { readonly id: number; readonly t: "failed"; readonly message: string }
  | { readonly id: number; readonly t: "exit"; readonly code: number | null; readonly signal: NodeJS.Signals | null }

interface Child {
  readonly started: Deferred.Deferred<number, SpawnError>
  readonly exited: Deferred.Deferred<number>
  /** Its outputs whose sockets closed (it is forgotten at 3). */
  closedPipes: number
  readonly pipes: readonly [Queue.Queue<Uint8Array, Cause.Done>, Queue.Queue<Uint8Array, Cause.Done>, Queue.Queue<Uint8Array, Cause.Done>]
}

interface Helper {
  readonly process: ChildProcess
  readonly children: Map<number, Child>
}

const helperPath = fileURLToPath(new URL("./SpawnHelper.ts", import.meta.url))

/** util-linux's setpriv (always on Debian): the helper dies with the node. */
export const setpriv = ["/usr/bin/setpriv", "/bin/setpriv"].find((candidate) => fs.existsSync(candidate))

const exitCodeOf = (code: number | null, signal: NodeJS.Signals | null): number =>
  code ?? 128 + (signal === null ? 0 : os.constants.signals[signal] ?? 0)

const signalGroup = (pid: number, signal: NodeJS.Signals) => {
  try {
    process.kill(-pid, signal)
  } catch {
    // The group is gone.
  }
}

/** A child that will never write again (it failed to start, or its helper died): every wait on it ends. */
const endChild = (child: Child, code: number) => {
  Deferred.doneUnsafe(child.started, Effect.fail(new SpawnError({ message: "the spawn helper stopped" })))
  for (const pipe of child.pipes) Queue.endUnsafe(pipe)
  Deferred.doneUnsafe(child.exited, Effect.succeed(code))
}

/** Reads the first line of a socket from the helper (`<id> <fd>`), then hands it and what follows to `route`. */
const readName = (socket: net.Socket, route: (id: number, fd: number, rest: Buffer) => boolean) => {
  let pending: Buffer = Buffer.alloc(0)
  const onData = (bytes: Buffer) => {
    pending = pending.length === 0 ? bytes : Buffer.concat([pending, bytes])
    const end = pending.indexOf(10)
    if (end < 0) {
      if (pending.length > 64) socket.destroy()
      return
    }
    socket.off("data", onData)
    const [id, fd] = pending.subarray(0, end).toString("latin1").split(" ").map(Number)
    if (!route(id!, fd!, pending.subarray(end + 1))) socket.destroy()
  }
  socket.on("data", onData)
  socket.on("error", () => {})
}

export class IngestSpawner extends Context.Service<IngestSpawner, {
  readonly spawn: (command: SpawnCommand) => Effect.Effect<IngestChild, SpawnError, Scope.Scope>
}>()("vms/runtime/ffmpeg/IngestSpawner") {
  static readonly layer = Layer.effect(
    IngestSpawner,
    Effect.gen(function*() {
      let helper: Helper | undefined
      let nextId = 0
      let closed = false
      /** Every child whose outputs may still arrive, whichever helper started it. */
      const children = new Map<number, Child>()

      // ffmpeg's outputs arrive here: one connection per fd, named by its first line.
      const socketName = `vms-spawn-${process.pid}-${randomBytes(6).toString("hex")}`
      const server = net.createServer((socket) =>
        readName(socket, (id, fd, rest) => {
          const child = children.get(id)
          const pipe = child?.pipes[fd - 1]
          if (child === undefined || pipe === undefined) return false
          if (rest.length > 0) Queue.offerUnsafe(pipe, rest)
          socket.on("data", (bytes: Buffer) => void Queue.offerUnsafe(pipe, bytes))
          socket.once("close", () => {
            Queue.endUnsafe(pipe)
            if (++child.closedPipes === 3) children.delete(id)
          })
          return true
        })
      )
      yield* Effect.callback<void, SpawnError>((resume) => {
        server.once("error", (error) => resume(Effect.fail(new SpawnError({ message: `spawn socket: ${error.message}` }))))
        server.listen(`\0${socketName}`, () => resume(Effect.void))
      }).pipe(Effect.orDie)
      server.unref()

      const onMessage = (started: Helper) => (message: FromHelper) => {
        const child = started.children.get(message.id)
        if (child === undefined) return
        switch (message.t) {
          case "spawned":
            Deferred.doneUnsafe(child.started, Effect.succeed(message.pid))
            return
          case "failed":
            children.delete(message.id)
            started.children.delete(message.id)
            Deferred.doneUnsafe(child.started, Effect.fail(new SpawnError({ message: message.message })))
            endChild(child, -1)
            return
          case "exit":
            // Its outputs end when their sockets close (they may still be on their way).
            started.children.delete(message.id)
            Deferred.doneUnsafe(child.exited, Effect.succeed(exitCodeOf(message.code, message.signal)))
            return
        }
      }

      const startHelper = (): Helper => {
        const [file, args] = setpriv === undefined
          ? [process.execPath, [helperPath, socketName]]
          : [setpriv, ["--pdeathsig", "KILL", "--", process.execPath, helperPath, socketName]]
        const started: Helper = {
          process: spawnProcess(file, args, { stdio: ["ignore", "inherit", "inherit", "ipc"] }),
          children: new Map()
        }
        const gone = () => {
          if (helper === started) helper = undefined
          for (const [id, child] of started.children) {
            children.delete(id)
            endChild(child, -1)
          }
          started.children.clear()
        }
        started.process.on("message", onMessage(started))
        // It could not start, or its channel broke: either way it serves no more.
        started.process.on("error", gone)
        started.process.once("exit", gone)
        // Neither keeps the node running.
        started.process.unref()
        started.process.channel?.unref()
        return started
      }

      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          closed = true
          // The helper exits when its channel closes; its children (all stopped by now) would follow.
          if (helper?.process.connected) helper.process.disconnect()
          server.close()
        })
      )

      const killer = (child: Child, pid: number) => (signal: NodeJS.Signals, forceKillAfterMs: number): Effect.Effect<void> =>
        Effect.suspend(() => {
          if (Deferred.isDoneUnsafe(child.exited)) return Effect.void
          signalGroup(pid, signal)
          return Deferred.await(child.exited).pipe(
            Effect.timeout(forceKillAfterMs),
            Effect.catch(() =>
              Effect.sync(() => signalGroup(pid, "SIGKILL")).pipe(
                Effect.andThen(Deferred.await(child.exited).pipe(Effect.timeout("5 seconds"), Effect.ignore))
              )
            ),
            Effect.asVoid
          )
        })

      /** Asks the helper to start it and waits for the answer (not interruptible: a started child is always handed back to be killed). */
      const start = (command: SpawnCommand) =>
        Effect.gen(function*() {
          if (closed) return yield* new SpawnError({ message: "the node is stopping" })
          const child: Child = {
            started: Deferred.makeUnsafe<number, SpawnError>(),
            exited: Deferred.makeUnsafe<number>(),
            closedPipes: 0,
            pipes: [
              yield* Queue.make<Uint8Array, Cause.Done>(),
              yield* Queue.make<Uint8Array, Cause.Done>(),
              yield* Queue.make<Uint8Array, Cause.Done>()
            ]
          }
          const id = nextId++
          if (helper === undefined || !helper.process.connected) helper = startHelper()
          helper.children.set(id, child)
          children.set(id, child)
          helper.process.send({ op: "spawn", id, ...command })
          const pid = yield* Deferred.await(child.started)
          return { child, pid, kill: killer(child, pid) }
        })

      const spawn = (command: SpawnCommand): Effect.Effect<IngestChild, SpawnError, Scope.Scope> =>
        Effect.acquireRelease(start(command), ({ kill }) => kill("SIGTERM", 1_000)).pipe(
          Effect.map(({ child, kill, pid }): IngestChild => ({
            pid,
            stdout: Stream.fromQueue(child.pipes[0]),
            stderr: Stream.fromQueue(child.pipes[1]),
            fd3: Stream.fromQueue(child.pipes[2]),
            exitCode: Deferred.await(child.exited),
            kill
          }))
        )

      return IngestSpawner.of({ spawn })
    })
  )
}
