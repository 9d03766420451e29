/**
 * A TCP port on 127.0.0.1 that is free right now (the kernel picks it). For
 * servers we start as separate processes, which cannot report a port 0 back.
 */
import { Effect } from "effect"
import * as net from "node:net"

export const freePort: Effect.Effect<number, Error> = Effect.callback<number, Error>((resume) => {
  const server = net.createServer()
  server.once("error", (cause) => resume(Effect.fail(cause)))
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})
