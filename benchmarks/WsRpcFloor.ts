/**
 * The floor under `vms bench rpc`: the same closed loop (64 calls in flight,
 * JSON-RPC 2.0 frames over one loopback WebSocket) against a plain `ws`
 * server with no application code: it parses each request and answers a
 * status-sized result at once (no Effect, no auth, no schema, no metrics).
 * What it measures is what Node, `ws` and the kernel cost per call on the
 * machine at hand; the node's figures sit on top of it.
 *
 *   node benchmarks/WsRpcFloor.ts --concurrency 64 --duration 10 --warmup 3
 *
 * The server is a child process (forked from this file), like the node in
 * the bench; this process is the client.
 */
import { fork } from "node:child_process"
import { parseArgs } from "node:util"
import WebSocket, { WebSocketServer } from "ws"

const { values: flags } = parseArgs({
  options: {
    concurrency: { type: "string", default: "64" },
    duration: { type: "string", default: "10" },
    warmup: { type: "string", default: "3" },
    role: { type: "string", default: "client" }
  }
})

const result = `{"cameraId":"bench-0","status":"disabled","reason":null,"fps":0,"bitrate":0,"nodeId":"node-1",` +
  `"updatedAt":"2026-12-02T09:12:45.498Z"}`

const serve = () => {
  const server = new WebSocketServer({ host: "127.0.0.1", port: 0 })
  server.on("connection", (socket) => {
    socket.on("message", (data) => {
      const request = JSON.parse(data.toString())
      socket.send(`{"jsonrpc":"2.0","id":${JSON.stringify(request.id)},"result":${result}}`)
    })
  })
  server.once("listening", () => process.send!({ port: (server.address() as { readonly port: number }).port }))
}

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted.length === 0 ? 0 : sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!
const ms = (value: number) => Math.round(value * 1000) / 1000

const drive = async (concurrency: number, seconds: number, warmup: number) => {
  const child = fork(new URL(import.meta.url).pathname, ["--role", "server"])
  const port = await new Promise<number>((resolve) => child.once("message", (message: any) => resolve(message.port)))
  const socket = new WebSocket(`ws://127.0.0.1:${port}`, { skipUTF8Validation: true })
  await new Promise((resolve) => socket.once("open", resolve))
  const pending = new Map<number, () => void>()
  socket.on("message", (data) => {
    const reply = JSON.parse(data.toString())
    pending.get(reply.id)?.()
    pending.delete(reply.id)
  })
  let nextId = 0
  const call = (cameraId: string) =>
    new Promise<void>((resolve) => {
      const id = nextId++
      pending.set(id, resolve)
      socket.send(JSON.stringify({ jsonrpc: "2.0", id, method: "get_camera_status", params: { cameraId } }))
    })
  const loop = async (window: number) => {
    const samples: Array<number> = []
    const until = Date.now() + window * 1000
    await Promise.all(Array.from({ length: concurrency }, async (_, worker) => {
      for (let index = worker; Date.now() < until; index += concurrency) {
        const started = performance.now()
        await call(`bench-${index % 20}`)
        samples.push(performance.now() - started)
      }
    }))
    return samples.sort((a, b) => a - b)
  }
  await loop(warmup)
  const samples = await loop(seconds)
  socket.terminate()
  child.kill()
  process.stdout.write(`${JSON.stringify({
    concurrency,
    calls: samples.length,
    callsPerSecond: Math.round(samples.length / seconds),
    p50Ms: ms(percentile(samples, 50)),
    p90Ms: ms(percentile(samples, 90)),
    p99Ms: ms(percentile(samples, 99)),
    maxMs: ms(samples[samples.length - 1] ?? 0)
  })}\n`)
}

if (flags.role === "server") serve()
else await drive(Number(flags.concurrency), Number(flags.duration), Number(flags.warmup))
