import { assert, describe, it } from "@effect/vitest"
import { contentRange, parse } from "./ByteRange.ts"

describe("ByteRange", () => {
  it("parses first-last, open-ended and suffix ranges against the size", () => {
    assert.deepStrictEqual(parse("bytes=0-99", 1000), { start: 0, end: 99 })
    assert.deepStrictEqual(parse("bytes=900-", 1000), { start: 900, end: 999 })
    assert.deepStrictEqual(parse("bytes=-100", 1000), { start: 900, end: 999 })
    assert.deepStrictEqual(parse("bytes=990-2000", 1000), { start: 990, end: 999 })
    assert.deepStrictEqual(parse("bytes=-5000", 1000), { start: 0, end: 999 })
    assert.strictEqual(contentRange({ start: 0, end: 99 }, 1000), "bytes 0-99/1000")
  })

  it("answers unsatisfiable past the end, and whole for absent, malformed or multiple ranges", () => {
    assert.strictEqual(parse("bytes=1000-", 1000), "unsatisfiable")
    assert.strictEqual(parse("bytes=-0", 1000), "unsatisfiable")
    for (const header of [undefined, "", "bytes=", "items=0-1", "bytes=5-1", "bytes=0-1,5-9", "bytes=a-b"]) {
      assert.isUndefined(parse(header, 1000), String(header))
    }
  })
})
