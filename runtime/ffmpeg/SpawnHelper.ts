/**
 * The spawn helper behind `IngestSpawner`: a small process of its own that
 * starts the node's ffmpegs. Plain Node, no Effect: it does only this.
 *
 * Why a process: starting a child forks the process that starts it. Forking
 * the node (a large heap, many threads) costs its event loop 0.1–0.4 s per
 * ffmpeg on a loaded machine, whether the main thread or a worker thread
 * forks (a fork write-protects the whole address space, and the node's
 * threads then stall on the page-table lock and fault on every page they
 * write). Forking this small helper costs little and stalls nobody.
 *
 * The helper never touches an ffmpeg's output: for each child it connects
 * three sockets to the node's spawn socket (named by argv[2]), names each with a
 * first line `<id> <fd>`, and hands them to ffmpeg as its fds 1, 2 and 3, so
 * ffmpeg writes straight to the node, as it would to pipes.
 *
 * It runs under `setpriv --pdeathsig KILL`, so it dies with the node (even by
 * SIGKILL), and the node starts each ffmpeg the same way, so they die with
 * it. When the node closes the IPC channel, it exits.
 *
 * Messages in: `{ op: "spawn", id, file, args, cwd, niceness }`.
 * Messages out: `spawned` (pid) or `failed` (message), then `exit` (code, signal).
 */
import { spawn } from "node:child_process"
import * as net from "node:net"
import * as os from "node:os"

interface SpawnRequest {
  readonly op: "spawn"
  readonly id: number
  readonly file: string
  readonly args: ReadonlyArray<string>
  readonly cwd: string
  readonly niceness: number
}

/** The node's spawn socket, in the abstract namespace (argv cannot carry the leading NUL). */
const socketPath = `\0${process.argv[2]!}`

const send = (message: unknown) => {
  if (process.connected) process.send!(message)
}

/** A socket to the node, named by its first line; resolves once the name is written. */
const outlet = (id: number, fd: 1 | 2 | 3) =>
  new Promise<net.Socket>((resolve, reject) => {
    const socket = net.connect(socketPath)
    socket.once("error", reject)
    socket.once("connect", () => socket.write(`${id} ${fd}\n`, () => resolve(socket)))
  })

const start = async (request: SpawnRequest) => {
  const { id } = request
  let outlets: Array<net.Socket> = []
  try {
    outlets = await Promise.all([outlet(id, 1), outlet(id, 2), outlet(id, 3)])
    const child = spawn(request.file, request.args, {
      cwd: request.cwd,
      stdio: ["ignore", outlets[0]!, outlets[1]!, outlets[2]!],
      // Its own process group, so the node can signal the whole group.
      detached: true
    })
    child.once("exit", (code, signal) => send({ id, t: "exit", code, signal }))
    await new Promise<void>((resolve, reject) => {
      child.once("spawn", resolve)
      child.once("error", reject)
    })
    try {
      // Below the node: a burst of ffmpeg start-ups must not starve the node's lease renewals.
      os.setPriority(child.pid!, request.niceness)
    } catch {
      // Gone already: its exit is reported.
    }
    send({ id, t: "spawned", pid: child.pid })
  } catch (error) {
    send({ id, t: "failed", message: error instanceof Error ? error.message : String(error) })
  } finally {
    // ffmpeg holds its own copies; the node sees the end of each once ffmpeg exits.
    for (const socket of outlets) socket.destroy()
  }
}

process.on("message", (message: SpawnRequest) => {
  if (message.op === "spawn") void start(message)
})
// The node is gone or closing: so is this helper (its children follow by their parent-death signal).
process.on("disconnect", () => process.exit(0))
