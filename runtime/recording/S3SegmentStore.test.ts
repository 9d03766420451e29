/**
 * The S3 segment store against s3rver: put (small and multipart), exists,
 * presigned reads returning the same bytes, remove, and reachability.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { startS3rver } from "../../test/support/S3rver.ts"
import { tempDir } from "../../test/support/TestNode.ts"
import * as S3SegmentStore from "./S3SegmentStore.ts"
import { segmentKey } from "./SegmentStore.ts"

describe("S3SegmentStore", () => {
  it.live("stores small and multipart objects byte for byte, reads them by presigned URL, removes them", () =>
    Effect.gen(function*() {
      const s3 = yield* startS3rver()
      const store = yield* S3SegmentStore.make({
        endpoint: s3.endpoint,
        bucket: s3.bucket,
        region: "us-east-1",
        forcePathStyle: true,
        accessKeyId: "S3RVER",
        secretAccessKey: "S3RVER"
      })
      assert.isUndefined(yield* store.check)
      const dir = yield* tempDir("s3-objects")
      for (const size of [188 * 1000, 20 * 1024 * 1024 + 7]) {
        const file = path.join(dir, `${size}.ts`)
        const bytes = randomBytes(size)
        fs.writeFileSync(file, bytes)
        const key = segmentKey("dock", Date.UTC(2026, 0, 1) + size)
        assert.isFalse(yield* store.exists(key))
        yield* store.put(key, file, size)
        assert.isTrue(yield* store.exists(key))
        const source = yield* store.source(key, 60)
        assert.strictEqual(source._tag, "Url")
        const read = yield* Effect.promise(() => fetch((source as { url: string }).url).then((r) => r.arrayBuffer()))
        assert.isTrue(Buffer.from(read).equals(bytes), `object of ${size} bytes read back intact`)
        yield* store.remove(key)
        assert.isFalse(yield* store.exists(key))
      }
      const rejected = yield* store.put("../escape", path.join(dir, "x"), 0).pipe(Effect.flip)
      assert.strictEqual(rejected.message, "not a segment key")
      yield* s3.stop
      assert.match((yield* store.check) ?? "", /not reachable/)
    }).pipe(Effect.scoped))
})
