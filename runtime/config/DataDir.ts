/**
 * The node's data directory (`VMS_DATA_DIR`), created if missing and locked
 * for the node's life: two nodes on one data dir would share an embedded
 * Postgres and a spool, so the second one refuses to start. A lock left by a
 * node that died is taken over.
 */
import { Context, Effect, Layer, Schema } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { isAlive } from "../process/Liveness.ts"
import { NodeConfig } from "./NodeConfig.ts"

export class DataDirInUse extends Schema.TaggedError<DataDirInUse>()("DataDirInUse", {
  directory: Schema.String,
  message: Schema.String
}) {}


const lockName = "node.lock"

const acquire = (directory: string) =>
  Effect.tryPromise({
    try: async () => {
      await fs.mkdir(directory, { recursive: true })
      const lockFile = path.join(directory, lockName)
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          await fs.writeFile(lockFile, `${process.pid}\n`, { flag: "wx" })
          return lockFile
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error
          const holder = Number.parseInt(await fs.readFile(lockFile, "utf8").catch(() => ""), 10)
          if (Number.isInteger(holder) && holder !== process.pid && isAlive(holder)) {
            throw new Error(`${directory} is in use by another node (pid ${holder})`)
          }
          await fs.rm(lockFile, { force: true })
        }
      }
      throw new Error(`could not lock ${directory}`)
    },
    catch: (cause) => new DataDirInUse({ directory, message: cause instanceof Error ? cause.message : String(cause) })
  })

export class DataDir extends Context.Service<DataDir, { readonly path: string }>()("vms/runtime/config/DataDir") {
  static readonly layer = Layer.effect(
    DataDir,
    Effect.gen(function*() {
      const config = yield* NodeConfig
      const directory = path.resolve(config.dataDir)
      yield* Effect.acquireRelease(acquire(directory), (lockFile) => Effect.promise(() => fs.rm(lockFile, { force: true })))
      return DataDir.of({ path: directory })
    })
  )
}
