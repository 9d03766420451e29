/**
 * What a TCP connect to host:port gets right now: `connected`, `refused`
 * (nothing listens there: the host answered with a reset), or `no-answer`
 * (timed out, unreachable, unresolvable). For choosing a local service over
 * starting a throwaway one, and for proving a cluster node's process gone.
 */
import { Effect } from "effect"
import * as net from "node:net"

export type ConnectOutcome = "connected" | "refused" | "no-answer"

export const connectOutcome = (host: string, port: number, timeoutMs = 1_000): Effect.Effect<ConnectOutcome> =>
  Effect.callback<ConnectOutcome>((resume) => {
    const socket = net.connect({ host, port })
    const done = (outcome: ConnectOutcome) => {
      socket.destroy()
      resume(Effect.succeed(outcome))
    }
    socket.setTimeout(timeoutMs, () => done("no-answer"))
    socket.once("connect", () => done("connected"))
    socket.once("error", (error: NodeJS.ErrnoException) => done(error.code === "ECONNREFUSED" ? "refused" : "no-answer"))
    return Effect.sync(() => socket.destroy())
  })

export const reachable = (host: string, port: number, timeoutMs = 1_000): Effect.Effect<boolean> =>
  Effect.map(connectOutcome(host, port, timeoutMs), (outcome) => outcome === "connected")
