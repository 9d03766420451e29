/**
 * HTTP against an in-process test node: its base URL and a small fetch
 * wrapper that answers status, headers and text (JSON on demand).
 */
import { Effect } from "effect"
import { HttpServer } from "effect/http"
import { NetAddress } from "effect/net"

export const baseUrl = Effect.map(HttpServer.HttpServer, (server) => NetAddress.formatUrlUnsafe(server.address))

export interface TestResponse {
  readonly status: number
  readonly headers: Headers
  readonly text: string
  readonly bytes: Uint8Array
  readonly json: () => Record<string, any>
}

export const request = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
  Effect.flatMap(baseUrl, (base) =>
    Effect.promise(async (): Promise<TestResponse> => {
      const response = await fetch(path.startsWith("http") ? path : `${base}${path}`, {
        method,
        headers: body === undefined ? headers : { "content-type": "application/json", ...headers },
        ...(body === undefined ? {} : { body: JSON.stringify(body) })
      })
      const bytes = new Uint8Array(await response.arrayBuffer())
      const text = new TextDecoder().decode(bytes)
      return { status: response.status, headers: response.headers, text, bytes, json: () => JSON.parse(text) as Record<string, any> }
    }))
