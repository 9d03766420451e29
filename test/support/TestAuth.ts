/**
 * The authentication services for tests that mount the REST routes without
 * a whole node: credentials in the test's database, a signing secret in a
 * temp data dir, the rate limiter in process. Without credentials a loopback
 * test client is in setup mode (an admin); pass `VMS_BOOTSTRAP_TOKEN` etc.
 * to test authentication itself. Needs the test's `SqlClient`.
 */
import { Layer } from "effect"
import * as ClientApi from "../../rpc/ClientApi.ts"
import { DataDir } from "../../runtime/config/DataDir.ts"
import * as NodeConfig from "../../runtime/config/NodeConfig.ts"
import { Metrics } from "../../runtime/metrics/Metrics.ts"
import { MediaToken } from "../../runtime/recording/MediaToken.ts"
import { Effect } from "effect"
import { tempDir } from "./TestNode.ts"

export const layer = (env: Record<string, string> = {}) =>
  Layer.unwrap(
    Effect.gen(function*() {
      const dataDir = yield* tempDir("auth")
      const config = yield* NodeConfig.fromEnv({ VMS_DATA_DIR: dataDir, VMS_NODE_ID: "test-node", ...env })
      const foundation = Layer.mergeAll(
        Layer.succeed(NodeConfig.NodeConfig, config),
        Layer.succeed(DataDir, { path: dataDir }),
        Metrics.layer
      )
      return Layer.mergeAll(ClientApi.authServices, MediaToken.layer).pipe(Layer.provideMerge(foundation))
    })
  )
