/**
 * Whether something accepts TCP connections at host:port right now, for
 * choosing a local service over starting a throwaway one.
 */
import { Effect } from "effect"
import * as net from "node:net"

export const reachable = (host: string, port: number, timeoutMs = 1_000): Effect.Effect<boolean> =>
  Effect.callback<boolean>((resume) => {
    const socket = net.connect({ host, port })
    const done = (ok: boolean) => {
      socket.destroy()
      resume(Effect.succeed(ok))
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once("connect", () => done(true))
    socket.once("error", () => done(false))
  })
