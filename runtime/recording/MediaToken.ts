/**
 * Signed, expiring `?token=` values for media URLs a player fetches without
 * credentials (recorded segments, exports): an HMAC-SHA256 over the URL's
 * path and the expiry, so a token opens exactly one path until it expires.
 * Live URLs carry session tokens: the viewer session's id is signed in too,
 * and the media path also checks that the session still lives.
 * The secret is `VMS_JWT_SECRET`, or a random one kept in the data dir
 * (`media-url.secret`) so tokens survive restarts of an embedded node.
 */
import { Context, Effect, Layer, Option, Redacted } from "effect"
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { DataDir } from "../config/DataDir.ts"
import { NodeConfig } from "../config/NodeConfig.ts"

export type TokenCheck = "valid" | "expired" | "invalid"

export interface MediaTokenSigner {
  readonly sign: (urlPath: string, expiresAtMs: number) => string
  readonly verify: (urlPath: string, token: string, nowMs: number) => TokenCheck
  /** A token bound to a viewer session too: `<sessionId>.<expires>.<mac>`. */
  readonly signSession: (urlPath: string, sessionId: string, expiresAtMs: number) => string
  /** The session a token names, if it is a valid session token for `urlPath`. */
  readonly verifySession: (
    urlPath: string,
    token: string,
    nowMs: number
  ) => { readonly check: TokenCheck; readonly sessionId: string | undefined }
}

const mac = (secret: string, urlPath: string, expiresAtSeconds: number, sessionId?: string) =>
  createHmac("sha256", secret)
    .update(sessionId === undefined ? `${expiresAtSeconds}\n${urlPath}` : `${expiresAtSeconds}\n${urlPath}\n${sessionId}`)
    .digest("base64url")

const sessionTokenPattern = /^([0-9a-f-]{36})\.(\d{1,12})\.([A-Za-z0-9_-]{43})$/

/** Whether `token` is shaped like a session token (others are plain path tokens). */
export const isSessionToken = (token: string) => sessionTokenPattern.test(token)

export const makeSigner = (secret: string): MediaTokenSigner => ({
  sign: (urlPath, expiresAtMs) => {
    const expires = Math.ceil(expiresAtMs / 1000)
    return `${expires}.${mac(secret, urlPath, expires)}`
  },
  verify: (urlPath, token, nowMs) => {
    const match = /^(\d{1,12})\.([A-Za-z0-9_-]{43})$/.exec(token)
    if (match === null) return "invalid"
    const expires = Number(match[1])
    const expected = Buffer.from(mac(secret, urlPath, expires))
    if (!timingSafeEqual(expected, Buffer.from(match[2]!))) return "invalid"
    return expires * 1000 < nowMs ? "expired" : "valid"
  },
  signSession: (urlPath, sessionId, expiresAtMs) => {
    const expires = Math.ceil(expiresAtMs / 1000)
    return `${sessionId}.${expires}.${mac(secret, urlPath, expires, sessionId)}`
  },
  verifySession: (urlPath, token, nowMs) => {
    const match = sessionTokenPattern.exec(token)
    if (match === null) return { check: "invalid", sessionId: undefined }
    const [sessionId, expires] = [match[1]!, Number(match[2])]
    const expected = Buffer.from(mac(secret, urlPath, expires, sessionId))
    if (!timingSafeEqual(expected, Buffer.from(match[3]!))) return { check: "invalid", sessionId: undefined }
    return { check: expires * 1000 < nowMs ? "expired" : "valid", sessionId }
  }
})

export class MediaToken extends Context.Service<MediaToken, MediaTokenSigner>()("vms/runtime/recording/MediaToken") {
  static readonly layer = Layer.effect(
    MediaToken,
    Effect.gen(function*() {
      const config = yield* NodeConfig
      if (Option.isSome(config.jwtSecret)) return makeSigner(Redacted.value(config.jwtSecret.value))
      const dataDir = yield* DataDir
      const file = path.join(dataDir.path, "media-url.secret")
      const secret = yield* Effect.promise(async () => {
        const existing = await fs.readFile(file, "utf8").catch(() => undefined)
        if (existing !== undefined && existing.trim().length >= 32) return existing.trim()
        const created = randomBytes(32).toString("base64url")
        await fs.writeFile(file, created, { mode: 0o600 })
        return created
      })
      return makeSigner(secret)
    })
  )
}
