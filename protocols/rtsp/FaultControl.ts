/**
 * A small HTTP endpoint to drive a simulator running in another process:
 *
 * - `GET  /stats`: the simulator statistics as JSON
 * - `POST /faults/{mount}/{drop|hang|refuse|resume}`: fault of one mount (`cam3` or `3`)
 * - `POST /listener/{refuse|resume}`: close / reopen the RTSP listener
 *
 * Answers JSON; 404 for an unknown mount or path, 400 for an unknown action.
 */
import * as Http from "node:http"
import { Effect, Schema } from "effect"
import { SimulatorError } from "./SimulatorError.ts"
import type { SimulatorServer } from "./SimulatorServer.ts"

export const MountFaultAction = Schema.Literals(["drop", "hang", "refuse", "resume"])
export type MountFaultAction = typeof MountFaultAction.Type
export const ListenerAction = Schema.Literals(["refuse", "resume"])
export type ListenerAction = typeof ListenerAction.Type

const isMountFaultAction = Schema.is(MountFaultAction)
const isListenerAction = Schema.is(ListenerAction)

const send = (response: Http.ServerResponse, status: number, body: unknown): void => {
  const json = JSON.stringify(body)
  response.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(json) })
  response.end(json)
}

const handle = async (
  server: SimulatorServer,
  stats: () => unknown,
  request: Http.IncomingMessage,
  response: Http.ServerResponse
): Promise<void> => {
  const segments = new URL(request.url ?? "/", "http://control").pathname.split("/").filter((s) => s.length > 0)
  if (request.method === "GET" && segments.length === 1 && segments[0] === "stats") {
    return send(response, 200, stats())
  }
  if (request.method !== "POST") return send(response, 404, { error: "not found" })
  if (segments.length === 3 && segments[0] === "faults") {
    const mount = server.findMount(decodeURIComponent(segments[1]!))
    const action = segments[2]!
    if (mount === undefined) return send(response, 404, { error: `unknown mount ${segments[1]}` })
    if (!isMountFaultAction(action)) return send(response, 400, { error: `unknown action ${action}` })
    if (action === "drop") return send(response, 200, { mount: mount.name, action, dropped: mount.dropConnections() })
    server.setMode(mount, action === "resume" ? "normal" : action)
    return send(response, 200, { mount: mount.name, action, mode: mount.mode })
  }
  if (segments.length === 2 && segments[0] === "listener") {
    const action = segments[1]!
    if (!isListenerAction(action)) return send(response, 400, { error: `unknown action ${action}` })
    if (action === "refuse") server.stopListening()
    else await server.listen()
    return send(response, 200, { action, listening: server.listening })
  }
  return send(response, 404, { error: "not found" })
}

/** Serves the control endpoint on `host:port` until the scope closes; returns the bound port. */
export const serveFaultControl = (server: SimulatorServer, host: string, port: number, stats: () => unknown) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () =>
        new Promise<Http.Server>((resolve, reject) => {
          const http = Http.createServer((request, response) => {
            request.resume()
            handle(server, stats, request, response).catch((error) => send(response, 500, { error: String(error) }))
          })
          http.once("error", reject)
          http.listen({ port, host }, () => resolve(http))
        }),
      catch: (cause) => new SimulatorError({ reason: `cannot serve fault control on ${host}:${port}: ${cause}` })
    }),
    (http) =>
      Effect.callback<void>((resume) => {
        http.close(() => resume(Effect.void))
        http.closeAllConnections()
      })
  ).pipe(Effect.map((http) => {
    const address = http.address()
    return typeof address === "object" && address !== null ? address.port : port
  }))
