/**
 * The node's secret for access tokens and signed media URLs: `VMS_JWT_SECRET`
 * when set, otherwise a random one generated once and kept in
 * `<data dir>/jwt-secret` (mode 0600), so tokens survive restarts. Nodes of
 * a cluster must share `VMS_JWT_SECRET`.
 */
import { Context, Effect, Layer, Option, Redacted } from "effect"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { DataDir } from "../config/DataDir.ts"
import { NodeConfig } from "../config/NodeConfig.ts"

export class SigningSecret extends Context.Service<SigningSecret, Uint8Array>()("vms/auth/SigningSecret") {
  static readonly layer = Layer.effect(
    SigningSecret,
    Effect.gen(function*() {
      const config = yield* NodeConfig
      if (Option.isSome(config.jwtSecret)) return new TextEncoder().encode(Redacted.value(config.jwtSecret.value))
      const dataDir = yield* DataDir
      const file = path.join(dataDir.path, "jwt-secret")
      return yield* Effect.promise(async () => {
        try {
          return Buffer.from((await fs.readFile(file, "utf8")).trim(), "base64url")
        } catch {
          const secret = randomBytes(48)
          await fs.writeFile(file, `${secret.toString("base64url")}\n`, { mode: 0o600, flag: "wx" }).catch(async () => {})
          return Buffer.from((await fs.readFile(file, "utf8")).trim(), "base64url")
        }
      })
    })
  )
}
