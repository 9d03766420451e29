/**
 * `vms bench rpc`: `get_camera_status` at a fixed number of concurrent calls
 * through the typed client on `/rpc` and a plain JSON-RPC client on `/ws`,
 * then the same loop against a plain `ws` server (`WsRpcFloor.ts`). See
 * `ApiBench.ts`.
 */
import { Context, Effect, Layer } from "effect"
import { VmsClient } from "../rpc/Client.ts"
import {
  type ApiBenchOptions,
  closedLoop,
  fail,
  jsonRpcSocket,
  machine,
  measuringCpu,
  promiseLoop,
  rest,
  startApiNode,
  summary,
  writeResults
} from "./ApiBenchKit.ts"
import { runFloor } from "./FloorRuns.ts"

export const runRpcBench = Effect.fn("RpcBench.run")(function*(options: ApiBenchOptions) {
  const { startedAt, node, base, ws, apiKey } = yield* startApiNode(options)
  const cameras = 20
  for (let i = 0; i < cameras; i++) {
    yield* rest(base, "POST", "/api/v1/cameras", { id: `bench-${i}`, name: `bench ${i}`, url: `rtsp://127.0.0.1:9/bench-${i}`, enabled: false }, apiKey)
  }
  const cameraId = (index: number) => `bench-${index % cameras}`

  // Each client is closed before the next starts and before the node stops.
  const [typedSamples, typedCpu] = yield* Effect.scoped(Effect.gen(function*() {
    const context = yield* Layer.build(VmsClient.layer(`${ws}/rpc`, { apiKey }))
    const typed = Context.get(context, VmsClient)
    const typedCall = (index: number) => typed.get_camera_status({ cameraId: cameraId(index) })
    yield* Effect.logInfo("warming up").pipe(Effect.annotateLogs({ seconds: options.warmupSeconds }))
    yield* closedLoop(options.concurrency, options.warmupSeconds, typedCall)
    return yield* measuringCpu(node.pid, closedLoop(options.concurrency, options.durationSeconds, typedCall))
  }))

  // The plain client's loop is plain promises: an Effect per call would be
  // client CPU on the machine the node runs on, and part of the figure.
  const [jsonSamples, jsonCpu] = yield* Effect.scoped(Effect.gen(function*() {
    const socket = yield* jsonRpcSocket(`${ws}/ws`, apiKey, () => {})
    const jsonLoop = (seconds: number) =>
      Effect.tryPromise({
        try: () => promiseLoop(options.concurrency, seconds, async (index) => {
          const reply = await socket.call("get_camera_status", { cameraId: cameraId(index) })
          if (reply.error !== undefined) throw new Error(JSON.stringify(reply.error))
        }),
        catch: (cause) => fail(String(cause))
      })
    yield* jsonLoop(options.warmupSeconds)
    return yield* measuringCpu(node.pid, jsonLoop(options.durationSeconds))
  }))

  yield* node.stop
  // The machine's floor in the same minute: the same loop against a plain ws server with no application code.
  const floor = yield* runFloor("WsRpcFloor.ts", [
    "--concurrency", String(options.concurrency),
    "--duration", String(options.durationSeconds),
    "--warmup", String(options.warmupSeconds)
  ]).pipe(Effect.mapError((error) => fail(error.reason)))
  const typedSummary = {
    ...summary(typedSamples),
    callsPerSecond: Math.round(typedSamples.length / options.durationSeconds),
    cpu: typedCpu
  }
  const jsonSummary = {
    ...summary(jsonSamples),
    callsPerSecond: Math.round(jsonSamples.length / options.durationSeconds),
    cpu: jsonCpu
  }
  const result = {
    scenario: "rpc",
    startedAt,
    machine: machine(),
    concurrency: options.concurrency,
    windowSeconds: options.durationSeconds,
    method: "get_camera_status",
    typedRpc: typedSummary,
    jsonRpc: jsonSummary,
    plainWsFloor: floor,
    budgetP99Ms: 5,
    withinBudget: typedSummary.p99Ms <= 5 && jsonSummary.p99Ms <= 5
  }
  const row = (name: string, s: typeof typedSummary) =>
    `| ${name} | ${s.count} | ${s.callsPerSecond} | ${s.p50Ms} | ${s.p90Ms} | ${s.p99Ms} | ${s.maxMs} | ` +
    `${s.cpu.nodePercent} | ${s.cpu.clientPercent} | ${s.cpu.machinePercent} |`
  yield* writeResults(options.resultsDir, "rpc", result, [
    "# vms bench rpc",
    "",
    `${startedAt}, ${machine()}. \`get_camera_status\` on ${cameras} disabled cameras, ` +
    `${options.concurrency} concurrent calls (a closed loop: each of ${options.concurrency} callers sends its next call ` +
    `when the last is answered) for ${options.durationSeconds} s after ${options.warmupSeconds} s of warm-up, ` +
    "operator API token (authenticated, rate-limited and agency-checked on every call). The status comes from the " +
    "node's status view (fed by the actors' status events; the camera's actor is asked when an entry is older than 1 s). " +
    "Latency is per call as the client sees it. Node and client are separate processes sharing the machine's cores; " +
    "CPU columns are percent of one core over the window (machine: all cores together, so what is neither node nor " +
    "client is other processes).",
    "",
    "| transport | calls | calls/s | p50 ms | p90 ms | p99 ms | max ms | node CPU % | client CPU % | machine CPU % |",
    "|---|---|---|---|---|---|---|---|---|---|",
    row("typed client, /rpc", typedSummary),
    row("JSON-RPC 2.0, /ws", jsonSummary),
    `| floor: plain \`ws\` echo, no application code | ${floor.calls} | ${floor.callsPerSecond} | ${floor.p50Ms} | ` +
    `${floor.p90Ms} | ${floor.p99Ms} | ${floor.maxMs} | | | |`,
    "",
    "The floor row is `benchmarks/WsRpcFloor.ts`, run right after the node stopped: the same closed loop of JSON-RPC " +
    "frames over one loopback WebSocket against a plain `ws` server in a child process that parses each request and " +
    "answers a status-sized result at once (no Effect, auth, schema or metrics): what Node, ws and the kernel cost " +
    "per call on this machine in the same minute.",
    "",
    `Budget p99 ≤ 5 ms: ${result.withinBudget ? "met" : "NOT met"}.`,
    ""
  ].join("\n"))
  yield* Effect.logInfo("rpc bench done").pipe(Effect.annotateLogs({ typed: typedSummary, jsonRpc: jsonSummary, floor }))
  return result
})
