import { assert, describe, it } from "@effect/vitest"
import { makeSigner } from "./MediaToken.ts"

describe("MediaToken", () => {
  const signer = makeSigner("a-secret-of-at-least-thirty-two-characters")
  const now = Date.UTC(2026, 0, 1)
  const path = "/playback/dock/segments/42.ts"

  it("opens the path it was signed for until it expires", () => {
    const token = signer.sign(path, now + 60_000)
    assert.strictEqual(signer.verify(path, token, now), "valid")
    assert.strictEqual(signer.verify(path, token, now + 61_000), "expired")
  })

  it("does not open another path, and rejects forged or malformed tokens", () => {
    const token = signer.sign(path, now + 60_000)
    assert.strictEqual(signer.verify("/playback/dock/segments/43.ts", token, now), "invalid")
    assert.strictEqual(signer.verify("/playback/gate/segments/42.ts", token, now), "invalid")
    const [expires, mac] = token.split(".")
    assert.strictEqual(signer.verify(path, `${Number(expires) + 3600}.${mac}`, now), "invalid")
    assert.strictEqual(signer.verify(path, makeSigner("another-secret-of-thirty-two-characters").sign(path, now + 60_000), now), "invalid")
    for (const bad of ["", "x", "1.2", `${expires}.${mac}x`]) assert.strictEqual(signer.verify(path, bad, now), "invalid")
  })
})
