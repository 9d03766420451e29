/**
 * The spawn helper behind `IngestSpawner`: a small process of its own that
 * starts the node's ffmpegs and relays their output pipes to the node over
 * its IPC channel. Plain Node, no Effect: it does only this.
 *
 * Why a process: starting a child forks the process that starts it. Forking
 * the node (a large heap, many threads) costs its event loop 0.1–0.4 s per
 * ffmpeg on a loaded machine, whether the main thread or a worker thread
 * forks (a fork write-protects the whole address space, and the node's
 * threads then stall on the page-table lock and fault on every page they
 * write). Forking this small helper costs little and stalls nobody.
 *
 * It is started under `setpriv --pdeathsig KILL`, so it dies with the node
 * (even by SIGKILL), and it starts each ffmpeg the same way, so they die
 * with it. When the node closes the channel, it exits.
 *
 * Messages in: `{ op: "spawn", id, file, args, cwd, niceness }`.
 * Messages out, in order per id: `spawned` (pid) or `failed` (message);
 * `data` (fd 1, 2 or 3 with bytes); `exit` (code, signal) after every pipe
 * has closed, so no output follows it.
 */
import { spawn } from "node:child_process"
import * as os from "node:os"

interface SpawnRequest {
  readonly op: "spawn"
  readonly id: number
  readonly file: string
  readonly args: ReadonlyArray<string>
  readonly cwd: string
  readonly niceness: number
}

const send = (message: unknown) => {
  if (process.connected) process.send!(message)
}

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
    send({ id, t: "failed", message: error.message })
  })
  if (child.pid === undefined) return
  try {
    // Below the node: a burst of ffmpeg start-ups must not starve the node's lease renewals.
    os.setPriority(child.pid, request.niceness)
  } catch {
    // Gone already: its exit is reported below.
  }
  send({ id, t: "spawned", pid: child.pid })
  const relay = (fd: 1 | 2 | 3, stream: NodeJS.ReadableStream | null | undefined) =>
    stream?.on("data", (bytes: Buffer) => send({ id, t: "data", fd, bytes }))
  relay(1, child.stdout)
  relay(2, child.stderr)
  relay(3, child.stdio[3] as NodeJS.ReadableStream | null)
  child.once("close", (code, signal) => {
    if (!failed) send({ id, t: "exit", code, signal })
  })
}

process.on("message", (message: SpawnRequest) => {
  if (message.op === "spawn") start(message)
})
// The node is gone or closing: so is this helper (its children follow by their parent-death signal).
process.on("disconnect", () => process.exit(0))
