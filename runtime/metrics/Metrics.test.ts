import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawnSync } from "node:child_process"
import { requireBinary } from "../../test/support/Binaries.ts"
import { Metrics } from "./Metrics.ts"

describe("Metrics", () => {
  it.live("exposes defaults and vms_build_info in a form promtool accepts", () =>
    Effect.gen(function*() {
      const promtool = requireBinary("promtool")
      const metrics = yield* Metrics
      const { body, contentType } = yield* metrics.render
      assert.include(contentType, "text/plain")
      assert.match(body, /^vms_build_info\{version="[^"]+",node_version="[^"]+",effect_version="[^"]+"\} 1$/m)
      assert.match(body, /^process_cpu_seconds_total /m)
      assert.notMatch(body, /^nodejs_active_handles_total/m)
      const check = spawnSync(promtool, ["check", "metrics"], { input: body, encoding: "utf8" })
      assert.strictEqual(check.status, 0, `promtool: ${check.stdout}${check.stderr}`)
    }).pipe(Effect.provide(Metrics.layer)))
})
