/**
 * Starts the node's ffmpeg ingest processes from worker threads
 * (`SpawnWorker.ts`), so the node's event loop never waits for a fork and
 * exec: during a failover a survivor starts a dozen cameras at once, and each
 * spawn on the main thread held the loop (lease renewals, entities, HTTP) for
 * 0.1–0.4 s on this machine. A few threads start processes side by side; each
 * relays its children's stdout, stderr and fd 3 to the main thread.
 *
 * A child is a scoped resource in its own process group: closing the scope
 * sends SIGTERM to the group, SIGKILL a second later if it is still there,
 * and waits for its exit. The threads live as long as this layer; they are
 * the children's parents for `setpriv --pdeathsig`, so a node that dies, even
 * by SIGKILL, takes its ffmpegs along.
 */
import { type Cause, Context, Deferred, Effect, Layer, Queue, Schema, type Scope, Stream } from "effect"
import * as os from "node:os"
import { Worker } from "node:worker_threads"

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

/** Threads starting processes side by side. */
export const spawnThreads = 3

type FromWorker =
  | { readonly id: number; readonly t: "spawned"; readonly pid: number }
  | { readonly id: number; readonly t: "failed"; readonly message: string }
  | { readonly id: number; readonly t: "data"; readonly fd: 1 | 2 | 3; readonly bytes: Uint8Array }
  | { readonly id: number; readonly t: "exit"; readonly code: number | null; readonly signal: NodeJS.Signals | null }

interface Child {
  readonly started: Deferred.Deferred<number, SpawnError>
  readonly exited: Deferred.Deferred<number>
  readonly pipes: readonly [Queue.Queue<Uint8Array, Cause.Done>, Queue.Queue<Uint8Array, Cause.Done>, Queue.Queue<Uint8Array, Cause.Done>]
}

interface Thread {
  readonly worker: Worker
  readonly children: Map<number, Child>
  /** Spawns asked of it and not yet answered. */
  starting: number
}

const workerUrl = new URL("./SpawnWorker.ts", import.meta.url)

const exitCodeOf = (code: number | null, signal: NodeJS.Signals | null): number =>
  code ?? 128 + (signal === null ? 0 : os.constants.signals[signal] ?? 0)

const signalGroup = (pid: number, signal: NodeJS.Signals) => {
  try {
    process.kill(-pid, signal)
  } catch {
    // The group is gone.
  }
}

const endChild = (child: Child, code: number) => {
  Deferred.doneUnsafe(child.started, Effect.fail(new SpawnError({ message: "the spawning thread stopped" })))
  for (const pipe of child.pipes) Queue.endUnsafe(pipe)
  Deferred.doneUnsafe(child.exited, Effect.succeed(code))
}

export class IngestSpawner extends Context.Service<IngestSpawner, {
  readonly spawn: (command: SpawnCommand) => Effect.Effect<IngestChild, SpawnError, Scope.Scope>
}>()("vms/runtime/ffmpeg/IngestSpawner") {
  static readonly layer = Layer.effect(
    IngestSpawner,
    Effect.gen(function*() {
      const threads: Array<Thread> = []
      let nextId = 0
      let closed = false

      const onMessage = (thread: Thread) => (message: FromWorker) => {
        const child = thread.children.get(message.id)
        if (child === undefined) return
        switch (message.t) {
          case "spawned":
            thread.starting--
            Deferred.doneUnsafe(child.started, Effect.succeed(message.pid))
            return
          case "failed":
            thread.starting--
            thread.children.delete(message.id)
            Deferred.doneUnsafe(child.started, Effect.fail(new SpawnError({ message: message.message })))
            endChild(child, -1)
            return
          case "data":
            Queue.offerUnsafe(child.pipes[message.fd - 1], message.bytes)
            return
          case "exit":
            thread.children.delete(message.id)
            endChild(child, exitCodeOf(message.code, message.signal))
            return
        }
      }

      /** A thread that stops (it should not) ends its children's runs; its place is taken anew. */
      const startThread = (): Thread => {
        const thread: Thread = { worker: new Worker(workerUrl), children: new Map(), starting: 0 }
        thread.worker.on("message", onMessage(thread))
        thread.worker.on("error", () => {})
        thread.worker.once("exit", () => {
          for (const child of thread.children.values()) endChild(child, -1)
          thread.children.clear()
          const slot = threads.indexOf(thread)
          if (!closed && slot >= 0) threads.splice(slot, 1)
        })
        threads.push(thread)
        return thread
      }

      /** The least busy thread, started on first use. */
      const pickThread = (): Thread => {
        let best: Thread | undefined
        for (const thread of threads) if (best === undefined || thread.starting < best.starting) best = thread
        if (best !== undefined && (best.starting === 0 || threads.length >= spawnThreads)) return best
        return startThread()
      }

      yield* Effect.addFinalizer(() =>
        Effect.promise(() => {
          closed = true
          return Promise.all(threads.map((thread) => thread.worker.terminate()))
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

      /** Asks a thread to start it and waits for the answer (not interruptible: a started child is always handed back to be killed). */
      const start = (command: SpawnCommand) =>
        Effect.gen(function*() {
          if (closed) return yield* new SpawnError({ message: "the node is stopping" })
          const child: Child = {
            started: Deferred.makeUnsafe<number, SpawnError>(),
            exited: Deferred.makeUnsafe<number>(),
            pipes: [
              yield* Queue.make<Uint8Array, Cause.Done>(),
              yield* Queue.make<Uint8Array, Cause.Done>(),
              yield* Queue.make<Uint8Array, Cause.Done>()
            ]
          }
          const id = nextId++
          const thread = pickThread()
          thread.children.set(id, child)
          thread.starting++
          thread.worker.postMessage({ op: "spawn", id, ...command })
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
