import { assert, describe, it } from "@effect/vitest"
import { Effect, Option, Redacted } from "effect"
import * as NodeConfig from "./NodeConfig.ts"

const problem = (env: Record<string, string>) =>
  NodeConfig.fromEnv(env).pipe(Effect.flip, Effect.map((error) => error.message))

describe("NodeConfig", () => {
  it.effect("decodes the embedded defaults from an empty environment", () =>
    Effect.gen(function*() {
      const config = yield* NodeConfig.fromEnv({})
      assert.strictEqual(config.httpHost, "127.0.0.1")
      assert.strictEqual(config.httpPort, 8080)
      assert.strictEqual(config.dataDir, "./data")
      assert.strictEqual(config.cluster, "vms")
      assert.strictEqual(config.logLevel, "info")
      assert.isTrue(config.s3ForcePathStyle)
      assert.isTrue(Option.isNone(config.databaseUrl))
      assert.isTrue(Option.isNone(config.natsUrl))
    }))

  it.effect("decodes every variable it is given", () =>
    Effect.gen(function*() {
      const config = yield* NodeConfig.fromEnv({
        VMS_HTTP_PORT: "9000",
        VMS_DATABASE_URL: "postgres://u:secret@db.example:5432/vms",
        VMS_NATS_URL: "nats://127.0.0.1:4222",
        VMS_REDIS_URL: "redis://127.0.0.1:6379",
        VMS_S3_FORCE_PATH_STYLE: "false",
        VMS_NODE_ID: "node-a",
        VMS_LOG_LEVEL: "debug"
      })
      assert.strictEqual(config.httpPort, 9000)
      assert.strictEqual(Redacted.value(Option.getOrThrow(config.databaseUrl)), "postgres://u:secret@db.example:5432/vms")
      assert.strictEqual(Option.getOrThrow(config.natsUrl), "nats://127.0.0.1:4222")
      assert.isFalse(config.s3ForcePathStyle)
      assert.strictEqual(Option.getOrThrow(config.nodeId), "node-a")
      assert.strictEqual(config.logLevel, "debug")
    }))

  it.effect("flags override the environment", () =>
    Effect.gen(function*() {
      const config = yield* NodeConfig.fromEnv({ VMS_HTTP_PORT: "9000" }, { httpPort: "9100" })
      assert.strictEqual(config.httpPort, 9100)
    }))

  it.effect("names the variable and the problem on bad input", () =>
    Effect.gen(function*() {
      assert.match(yield* problem({ VMS_HTTP_PORT: "abc" }), /^VMS_HTTP_PORT \(--http-port\): .*finite number.*"abc"/)
      assert.match(yield* problem({ VMS_HTTP_PORT: "70000" }), /^VMS_HTTP_PORT .*port/)
      assert.match(yield* problem({ VMS_DATABASE_URL: "mysql://db/x" }), /^VMS_DATABASE_URL .*postgres:\/\//)
      assert.match(yield* problem({ VMS_DATABASE_URL: "not a url" }), /^VMS_DATABASE_URL /)
      assert.match(yield* problem({ VMS_NATS_URL: "http://x" }), /^VMS_NATS_URL /)
      assert.match(yield* problem({ VMS_S3_FORCE_PATH_STYLE: "maybe" }), /^VMS_S3_FORCE_PATH_STYLE /)
      assert.match(yield* problem({ VMS_LOG_LEVEL: "loud" }), /^VMS_LOG_LEVEL /)
      assert.match(yield* problem({ VMS_CLUSTER: "a b" }), /^VMS_CLUSTER /)
      // A cluster's nodes share agency quotas in Redis.
      assert.match(yield* problem({ VMS_NATS_URL: "nats://127.0.0.1:4222" }), /^VMS_REDIS_URL \(--redis-url\): is required in cluster mode/)
    }))

  it.effect("never shows a secret's value in an error", () =>
    Effect.gen(function*() {
      const message = yield* problem({ VMS_DATABASE_URL: "mysql://user:hunter2@db/x" })
      assert.notInclude(message, "hunter2")
      assert.include(message, "(hidden)")
    }))
})
