/**
 * The floor under `vms bench events`: how long a plain `ws` server with no
 * application code (no Effect, no node, no auth, no filter) takes to put one
 * notification-sized frame on each of N loopback WebSocket connections, and
 * when the clients have it. Anyone can rerun it on the machine at hand:
 *
 *   node benchmarks/WsFanoutFloor.ts --clients 1000 --processes 1 --rounds 30
 *
 * This process is the server; the clients are `ws` clients in `--processes`
 * child processes (forked from this file), each parsing every frame as JSON
 * like the bench's clients do. Each round stamps the frame with the time the
 * send loop starts (performance.timeOrigin + performance.now(), comparable
 * across processes on one machine) and sends it to every connection, one
 * `send` after another; a client's latency is its arrival time minus that
 * stamp. Printed: the send loop's own duration, and the arrival latencies
 * (p50, p99, max over all frames; the median round's first, median and last
 * arrival). Rounds are 300 ms apart, the first three are warm-up.
 */
import { fork } from "node:child_process"
import { parseArgs } from "node:util"
import WebSocket, { WebSocketServer } from "ws"

const now = () => performance.timeOrigin + performance.now()

const { values: flags } = parseArgs({
  options: {
    clients: { type: "string", default: "1000" },
    processes: { type: "string", default: "1" },
    rounds: { type: "string", default: "30" },
    role: { type: "string", default: "server" },
    url: { type: "string" },
    connections: { type: "string" },
    send: { type: "string", default: "ws" }
  }
})

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted.length === 0 ? 0 : sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!
const ms = (value: number) => Math.round(value * 100) / 100

/** A client process: opens its connections, records each frame's latency, reports them when told. */
const runClients = async (url: string, connections: number) => {
  const latencies: Array<[round: number, ms: number]> = []
  const sockets = await Promise.all(Array.from({ length: connections }, () =>
    new Promise<WebSocket>((resolve, reject) => {
      const socket = new WebSocket(url, { skipUTF8Validation: true })
      socket.on("message", (data) => {
        const arrived = now()
        const message = JSON.parse(data.toString())
        latencies.push([message.params.round, arrived - message.params.sentAt])
      })
      socket.once("open", () => resolve(socket))
      socket.once("error", reject)
    })))
  process.send!({ ready: sockets.length })
  process.on("message", (message: { readonly report?: boolean }) => {
    if (message.report !== true) return
    process.send!({ latencies }, () => {
      for (const socket of sockets) socket.terminate()
      process.exit(0)
    })
  })
}

const runServer = async (clients: number, processes: number, rounds: number, send: string) => {
  const server = new WebSocketServer({ host: "127.0.0.1", port: 0 })
  await new Promise<void>((resolve) => server.once("listening", () => resolve()))
  const { port } = server.address() as { readonly port: number }
  const children = Array.from({ length: processes }, (_, index) => {
    const share = Math.floor(clients / processes) + (index < clients % processes ? 1 : 0)
    return fork(new URL(import.meta.url).pathname, [
      "--role", "client", "--url", `ws://127.0.0.1:${port}`, "--connections", String(share)
    ])
  })
  await Promise.all(children.map((child) => new Promise((resolve) => child.once("message", resolve))))
  const sendLoopMs: Array<number> = []
  // A camera_status_update of the size the node sends.
  const fields = `"cameraId":"bench-events","status":"offline","reason":"connection refused","fps":0,"bitrate":0,` +
    `"nodeId":"node-1","updatedAt":"2026-12-02T09:12:45.498Z"`
  for (let round = 0; round < rounds; round++) {
    await new Promise((resolve) => setTimeout(resolve, 300))
    const sentAt = now()
    const frame = `{"jsonrpc":"2.0","method":"camera_status_update","params":{"subscription":"1",${fields},` +
      `"round":${round},"sentAt":${sentAt}}}`
    if (send === "ws") {
      for (const socket of server.clients) socket.send(frame)
    } else {
      // The frame built once (unmasked server frame: FIN + text opcode, 16-bit length) and written as one buffer per socket.
      const payload = Buffer.from(frame)
      const framed = Buffer.allocUnsafe(4 + payload.length)
      framed[0] = 0x81
      framed[1] = 126
      framed.writeUInt16BE(payload.length, 2)
      payload.copy(framed, 4)
      for (const socket of server.clients) (socket as unknown as { readonly _socket: { write: (b: Buffer) => void } })._socket.write(framed)
    }
    sendLoopMs.push(now() - sentAt)
  }
  await new Promise((resolve) => setTimeout(resolve, 500))
  const reports = await Promise.all(children.map((child) =>
    new Promise<Array<[number, number]>>((resolve) => {
      child.once("message", (message: any) => resolve(message.latencies))
      child.send({ report: true })
    })))
  server.close()
  const measured = reports.flat().filter(([round]) => round >= 3)
  const all = measured.map(([, latency]) => latency).sort((a, b) => a - b)
  const perRound = new Map<number, Array<number>>()
  for (const [round, latency] of measured) {
    const list = perRound.get(round)
    if (list === undefined) perRound.set(round, [latency])
    else list.push(latency)
  }
  const roundSummaries = [...perRound.values()].map((list) => {
    list.sort((a, b) => a - b)
    return { first: list[0]!, median: percentile(list, 50), last: list[list.length - 1]! }
  }).sort((a, b) => a.last - b.last)
  const medianRound = roundSummaries[Math.floor(roundSummaries.length / 2)]!
  const loops = sendLoopMs.slice(3).sort((a, b) => a - b)
  const result = {
    send,
    clients,
    clientProcesses: processes,
    measuredRounds: perRound.size,
    frames: all.length,
    sendLoopMs: { p50: ms(percentile(loops, 50)), max: ms(loops[loops.length - 1] ?? 0) },
    arrivalMs: { p50: ms(percentile(all, 50)), p90: ms(percentile(all, 90)), p99: ms(percentile(all, 99)), max: ms(all[all.length - 1] ?? 0) },
    medianRoundMs: { first: ms(medianRound.first), median: ms(medianRound.median), last: ms(medianRound.last) }
  }
  process.stdout.write(`${JSON.stringify(result)}\n`)
}

if (flags.role === "client") {
  await runClients(flags.url!, Number(flags.connections))
} else {
  await runServer(Number(flags.clients), Number(flags.processes), Number(flags.rounds), flags.send!)
}
