/**
 * The worker thread behind `IngestSpawner`: starts processes and relays
 * their output pipes to the node's main thread. Plain Node, no Effect: it
 * runs as a worker of its own and only does this.
 *
 * Why a thread: libuv's spawn returns only once the forked child has exec'd,
 * and on a loaded machine the child waits for a CPU first (0.1–0.4 s per
 * ffmpeg here during a failover). Spawning in the node's own event loop
 * stalled lease renewals, entities and HTTP for that long per camera; here
 * only this thread waits, and several of them start cameras side by side.
 *
 * A process forked here has this thread as its parent for the kernel's
 * parent-death signal (`setpriv --pdeathsig`): the thread lives as long as
 * the node, and the node's death (even SIGKILL) takes its children along.
 *
 * Messages in: `{ op: "spawn", id, file, args, cwd, niceness }`.
 * Messages out, in order per id: `spawned` (pid) or `failed` (message);
 * `data` (fd 1, 2 or 3 with bytes); `exit` (code, signal) after every pipe
 * has closed, so no output follows it.
 */
import { spawn } from "node:child_process"
import * as os from "node:os"
import { parentPort } from "node:worker_threads"

interface SpawnRequest {
  readonly op: "spawn"
  readonly id: number
  readonly file: string
  readonly args: ReadonlyArray<string>
  readonly cwd: string
  readonly niceness: number
}

const port = parentPort!

const start = (request: SpawnRequest) => {
  const { id } = request
  const child = spawn(request.file, request.args, {
    cwd: request.cwd,
    stdio: ["ignore", "pipe", "pipe", "pipe"],
    // Its own process group, so the node can signal the whole group.
    detached: true
  })
  let failed = false
  child.once("error", (error) => {
    if (child.pid !== undefined) return
    failed = true
    port.postMessage({ id, t: "failed", message: error.message })
  })
  if (child.pid === undefined) return
  try {
    // Below the node: a burst of ffmpeg start-ups must not starve the node's lease renewals.
    os.setPriority(child.pid, request.niceness)
  } catch {
    // Gone already: its exit is reported below.
  }
  port.postMessage({ id, t: "spawned", pid: child.pid })
  const relay = (fd: 1 | 2 | 3, stream: NodeJS.ReadableStream | null | undefined) =>
    stream?.on("data", (chunk: Buffer) => {
      // A copy of just these bytes (a read may be a view into a larger buffer), handed over, not cloned.
      const bytes = new Uint8Array(chunk)
      port.postMessage({ id, t: "data", fd, bytes }, [bytes.buffer])
    })
  relay(1, child.stdout)
  relay(2, child.stderr)
  relay(3, child.stdio[3] as NodeJS.ReadableStream | null)
  child.once("close", (code, signal) => {
    if (!failed) port.postMessage({ id, t: "exit", code, signal })
  })
}

port.on("message", (message: SpawnRequest) => {
  if (message.op === "spawn") start(message)
})
