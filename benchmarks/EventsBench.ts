/**
 * `vms bench events`: N WebSocket clients on `/ws` subscribed to
 * `camera_status_update`, a camera switched off and on, each notification's
 * latency from the status's `updatedAt`; then the same fan-out from a plain
 * `ws` server (`WsFanoutFloor.ts`). See `ApiBench.ts`.
 */
import { Effect } from "effect"
import {
  type ApiBenchOptions,
  cpuText,
  fail,
  jsonRpcSocket,
  machine,
  measuringCpu,
  rest,
  startApiNode,
  summary,
  writeResults
} from "./ApiBenchKit.ts"
import { runFloor } from "./FloorRuns.ts"

export const runEventsBench = Effect.fn("EventsBench.run")(function*(options: ApiBenchOptions) {
  const { startedAt, node, base, ws, apiKey } = yield* startApiNode(options)
  yield* rest(base, "POST", "/api/v1/cameras", { id: "bench-events", name: "events", url: "rtsp://127.0.0.1:9/events", enabled: false }, apiKey)
  const latencies: Array<number> = []
  /** Per measured event (status and updatedAt): each client's latency. */
  const byEvent = new Map<string, Array<number>>()
  let measuring = false
  let received = 0
  const onNotification = () => {
    // A client counts each status once (the node sends it once; this guards the figure, not the node).
    let last = ""
    return (message: any, receivedAt: number) => {
      if (message.method !== "camera_status_update") return
      received++
      const key = `${message.params.status}@${message.params.updatedAt}`
      if (key === last) return
      last = key
      if (!measuring) return
      const latency = receivedAt - Date.parse(message.params.updatedAt)
      latencies.push(latency)
      const samples = byEvent.get(key)
      if (samples === undefined) byEvent.set(key, [latency])
      else samples.push(latency)
    }
  }
  // The clients are closed before the node stops.
  const [cycles, cpu] = yield* Effect.scoped(Effect.gen(function*() {
    yield* Effect.logInfo("connecting clients").pipe(Effect.annotateLogs({ clients: options.clients }))
    const sockets = yield* Effect.forEach(
      Array.from({ length: options.clients }, (_, client) => client),
      () => jsonRpcSocket(`${ws}/ws`, apiKey, onNotification()),
      { concurrency: 50 }
    )
    yield* Effect.forEach(sockets, (socket) =>
      Effect.promise(() => socket.call("subscribe", { events: ["camera_status_update"], cameraIds: ["bench-events"] })).pipe(
        Effect.flatMap((reply) => reply.error === undefined ? Effect.void : Effect.fail(fail(JSON.stringify(reply.error))))
      ), { concurrency: 50, discard: true })
    const toggle = (enabled: boolean) => rest(base, "PATCH", "/api/v1/cameras/bench-events", { enabled }, apiKey)
    const cycle = Effect.gen(function*() {
      yield* toggle(true)
      yield* Effect.sleep("700 millis")
      yield* toggle(false)
      yield* Effect.sleep("700 millis")
    })
    // At least three cycles: the first events after start run cold code (V8 compiles the fan-out and socket paths).
    const warmupCycles = Math.max(3, Math.round(options.warmupSeconds / 1.4))
    yield* Effect.logInfo("warming up").pipe(Effect.annotateLogs({ cycles: warmupCycles }))
    for (let i = 0; i < warmupCycles; i++) yield* cycle
    const cycles = Math.max(1, Math.round(options.durationSeconds / 1.4))
    const [, cpu] = yield* measuringCpu(node.pid, Effect.gen(function*() {
      measuring = true
      for (let i = 0; i < cycles; i++) yield* cycle
      measuring = false
      yield* Effect.sleep("500 millis")
    }))
    return [cycles, cpu] as const
  }))
  yield* node.stop
  // The machine's floor in the same minute: one frame to as many plain ws clients from a plain ws server.
  const floor = yield* runFloor("WsFanoutFloor.ts", ["--clients", String(options.clients), "--processes", "1", "--rounds", "30"]).pipe(
    Effect.mapError((error) => fail(error.reason))
  )
  const perEvent = [...byEvent].map(([event, samples]) => {
    const { count, p50Ms, maxMs } = summary(samples)
    return { event, clients: count, firstMs: samples[0] ?? 0, p50Ms, lastMs: maxMs }
  })
  const events = summary(latencies)
  const result = {
    scenario: "events",
    startedAt,
    machine: machine(),
    clients: options.clients,
    cycles,
    notificationsReceived: received,
    latency: events,
    perEvent,
    cpu,
    plainWsFloor: floor,
    budgetP99Ms: 20,
    withinBudget: events.p99Ms <= 20 && events.count > 0
  }
  yield* writeResults(options.resultsDir, "events", result, [
    "# vms bench events",
    "",
    `${startedAt}, ${machine()}. ${options.clients} WebSocket clients on /ws (JSON-RPC 2.0), each subscribed to ` +
    `\`camera_status_update\` of one camera with an operator API token; the camera was switched on and off ${cycles} times ` +
    "(each switch is a status change in its actor). Latency = arrival at the client − the status's `updatedAt` " +
    "(actor → event bus → each subscription's filter → socket → client), measured after " +
    `${Math.max(3, Math.round(options.warmupSeconds / 1.4))} warm-up cycles. The clients share one process, so its event loop's ` +
    "queue is part of the figure. Each notification is one WebSocket frame, one TCP write per client (the node builds " +
    "the frame once per event and writes the same buffer to every socket).",
    "",
    "| notifications | p50 ms | p90 ms | p99 ms | max ms |",
    "|---|---|---|---|---|",
    `| ${events.count} | ${events.p50Ms} | ${events.p90Ms} | ${events.p99Ms} | ${events.maxMs} |`,
    "",
    `CPU over the measured cycles: ${cpuText(cpu)}.`,
    "",
    `Floor, measured right after the node stopped (\`benchmarks/WsFanoutFloor.ts\`): a plain \`ws\` server with no ` +
    `application code sending one frame of the same size to ${floor.clients} plain \`ws\` clients in one client process ` +
    `(30 rounds, 3 of warm-up): the send loop alone takes ${floor.sendLoopMs.p50} ms (median), and arrivals are ` +
    `p50 ${floor.arrivalMs.p50} ms, p90 ${floor.arrivalMs.p90} ms, **p99 ${floor.arrivalMs.p99} ms**, max ${floor.arrivalMs.max} ms ` +
    "after the loop started.",
    "",
    "Per event (first, median and last of the clients):",
    "",
    "| event | clients | first ms | p50 ms | last ms |",
    "|---|---|---|---|---|",
    ...perEvent.map((e) => `| ${e.event} | ${e.clients} | ${e.firstMs} | ${e.p50Ms} | ${e.lastMs} |`),
    "",
    `Budget p99 ≤ 20 ms: ${result.withinBudget ? "met" : "NOT met"}.`,
    ""
  ].join("\n"))
  yield* Effect.logInfo("events bench done").pipe(Effect.annotateLogs({ latency: events, floor }))
  return result
})
