import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { Sharding } from "effect/cluster"
import { SqlClient } from "effect/sql"
import * as Node from "../runtime/Node.ts"
import { ownedShards, shardsPerGroup } from "../runtime/sharding/LocalSharding.ts"
import { until } from "../test/support/Eventually.ts"
import { testConfig } from "../test/support/TestNode.ts"
import { Camera } from "./Camera.ts"

const node = Layer.unwrap(Effect.map(testConfig(), Node.layer))

describe("Camera entity on the local runner", () => {
  it.live("answers status through sharding from its registration", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql`INSERT INTO cameras (id, agency_id, name, url, enabled)
                 VALUES ('cam-a', 'default', 'Gate A', 'rtsp://127.0.0.1:8554/cam0', true),
                        ('cam-b', 'default', 'Gate B', 'rtsp://127.0.0.1:8554/cam1', false)`
      const clientFor = yield* Camera.client
      const a = yield* clientFor("cam-a").GetStatus()
      assert.strictEqual(a.cameraId, "cam-a")
      assert.strictEqual(a.status, "offline")
      assert.strictEqual(a.nodeId, "test-node")
      const b = yield* clientFor("cam-b").GetStatus()
      assert.strictEqual(b.status, "disabled")
      assert.isNull(b.reason)

      // The actor follows its registration on the next message.
      yield* sql`UPDATE cameras SET enabled = false WHERE id = 'cam-a'`
      const disabled = yield* clientFor("cam-a").GetStatus()
      assert.strictEqual(disabled.status, "disabled")
      assert.isTrue(disabled.updatedAt.epochMilliseconds >= a.updatedAt.epochMilliseconds)
    }).pipe(Effect.provide(node)))

  it.live("fails with CameraNotFound for an unknown camera", () =>
    Effect.gen(function*() {
      const clientFor = yield* Camera.client
      const error = yield* Effect.flip(clientFor("no-such-camera").GetStatus())
      assert.strictEqual(error._tag, "CameraNotFound")
      assert.strictEqual(error._tag === "CameraNotFound" ? error.cameraId : "", "no-such-camera")
    }).pipe(Effect.provide(node)))

  it.live("the single runner owns every shard", () =>
    Effect.gen(function*() {
      const sharding = yield* Sharding.Sharding
      yield* until("the runner owns every shard", () => ownedShards(sharding) === shardsPerGroup)
      assert.strictEqual(ownedShards(sharding), shardsPerGroup)
    }).pipe(Effect.provide(node)))
})
