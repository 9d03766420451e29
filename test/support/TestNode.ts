/**
 * Builds node configurations for tests: a temp data dir, a free HTTP port,
 * a database of its own, quiet logs. Overrides use the `VMS_*` names.
 */
import { Effect, type Scope } from "effect"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import * as NodeConfig from "../../runtime/config/NodeConfig.ts"
import { testDatabaseUrl } from "./TestDatabase.ts"

export const tempDir = (prefix: string): Effect.Effect<string, never, Scope.Scope> =>
  Effect.acquireRelease(
    // 0755: embedded Postgres runs as the postgres user when tests run as root.
    Effect.promise(async () => {
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), `vms-${prefix}-`))
      await fs.chmod(dir, 0o755)
      return dir
    }),
    // Retries: a node killed at the end of a test may still be taking its ffmpegs down.
    (dir) => Effect.promise(() => fs.rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 }))
  )

/** A decoded config for an in-process test node. */
export const testConfig = (env: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const dataDir = yield* tempDir("node")
    const databaseUrl = env.VMS_DATABASE_URL ?? (yield* testDatabaseUrl)
    return yield* NodeConfig.fromEnv({
      VMS_DATA_DIR: dataDir,
      VMS_HTTP_PORT: "0",
      VMS_LOG_LEVEL: "warn",
      VMS_NODE_ID: "test-node",
      ...env,
      VMS_DATABASE_URL: databaseUrl
    })
  })
