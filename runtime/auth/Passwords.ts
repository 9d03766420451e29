/**
 * Password hashes with scrypt (node:crypto), stored as
 * `scrypt$N$r$p$salt$hash` (base64url) so the cost can rise later without
 * invalidating old hashes. Verification is constant-time.
 */
import { Effect } from "effect"
import { randomBytes, scrypt, timingSafeEqual } from "node:crypto"

const cost = { N: 16_384, r: 8, p: 1 }
const keyLength = 32

const derive = (password: string, salt: Buffer, N: number, r: number, p: number) =>
  Effect.callback<Buffer>((resume) => {
    scrypt(password.normalize("NFKC"), salt, keyLength, { N, r, p, maxmem: 64 * 1024 * 1024 }, (error, key) =>
      resume(error === null ? Effect.succeed(key) : Effect.die(error)))
  })

export const hash = Effect.fn("Passwords.hash")(function*(password: string) {
  const salt = randomBytes(16)
  const key = yield* derive(password, salt, cost.N, cost.r, cost.p)
  return ["scrypt", cost.N, cost.r, cost.p, salt.toString("base64url"), key.toString("base64url")].join("$")
})

/** False for a wrong password and for a hash this module did not write. */
export const verify = Effect.fn("Passwords.verify")(function*(password: string, stored: string) {
  const [scheme, N, r, p, salt, expected] = stored.split("$")
  if (scheme !== "scrypt" || salt === undefined || expected === undefined) return false
  const key = yield* derive(password, Buffer.from(salt, "base64url"), Number(N), Number(r), Number(p))
  const want = Buffer.from(expected, "base64url")
  return want.length === key.length && timingSafeEqual(want, key)
})
