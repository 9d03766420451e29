import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { redisUrl } from "../test/support/Redis.ts"
import { runQuotaBench } from "./QuotaBench.ts"

describe("QuotaBench", () => {
  it.live("admits through both stores, counts over-admissions under contention and writes the results", () =>
    Effect.gen(function*() {
      const resultsDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "vms-bench-quota-test-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(resultsDir, { recursive: true, force: true })))
      const result = yield* runQuotaBench({
        dataDir: Path.join(resultsDir, "data"),
        resultsDir,
        redisUrl: yield* redisUrl,
        concurrency: 96,
        durationSeconds: 1,
        warmupSeconds: 0.5
      })
      const json = JSON.parse(Fs.readFileSync(Path.join(resultsDir, "quota.json"), "utf8"))
      assert.deepStrictEqual(json, JSON.parse(JSON.stringify(result)))
      assert.deepStrictEqual(json.stores.map((s: any) => s.store), ["in process", "Redis"])
      for (const store of json.stores) {
        assert.isAbove(store.throughput.decisions, 0)
        assert.strictEqual(store.throughput.failed, 0)
        assert.strictEqual(store.contention.failed, 0)
        assert.isAbove(store.contention.granted, 0)
        assert.isAbove(store.contention.refused, 0)
        assert.strictEqual(store.contention.overAdmissions, 0)
        assert.isAtMost(store.contention.maxStoreCount, store.contention.limit)
      }
      assert.match(Fs.readFileSync(Path.join(resultsDir, "quota.md"), "utf8"), /^\| Redis \| [\d,]+ \| \*\*[\d,]+\*\* \| /m)
    }).pipe(Effect.scoped), 120_000)
})
