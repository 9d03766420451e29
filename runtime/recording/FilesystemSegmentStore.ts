/**
 * The segment store of embedded mode: objects are files under
 * `<data>/recordings/<key>`. A put hard-links the spool file under a
 * temporary name and renames it into place (no copy, atomic, and the spool
 * file stays until the index row is committed); it copies when the spool
 * and the store are on different file systems.
 */
import { Effect, Layer } from "effect"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { DataDir } from "../config/DataDir.ts"
import { isSegmentKey, SegmentStore, SegmentStoreError } from "./SegmentStore.ts"

const describe = (cause: unknown) => (cause instanceof Error ? cause.message : String(cause))

export const make = (root: string) => {
  const resolve = (operation: string, key: string) =>
    isSegmentKey(key)
      ? Effect.succeed(path.join(root, key))
      : Effect.fail(new SegmentStoreError({ operation, key, message: "not a segment key" }))

  const attempt = <A>(operation: string, key: string, run: (file: string) => Promise<A>) =>
    Effect.flatMap(resolve(operation, key), (file) =>
      Effect.tryPromise({
        try: () => run(file),
        catch: (cause) => new SegmentStoreError({ operation, key, message: describe(cause) })
      }))

  return SegmentStore.of({
    kind: "filesystem",
    put: (key, source) =>
      attempt("put", key, async (file) => {
        await fs.mkdir(path.dirname(file), { recursive: true })
        const temporary = `${file}.${randomBytes(4).toString("hex")}.tmp`
        try {
          await fs.link(source, temporary)
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== "EXDEV") throw error
          await fs.copyFile(source, temporary)
        }
        await fs.rename(temporary, file)
      }),
    remove: (key) => attempt("remove", key, (file) => fs.rm(file, { force: true })),
    exists: (key) => attempt("exists", key, (file) => fs.access(file).then(() => true, () => false)),
    source: (key) => Effect.map(resolve("source", key), (file) => ({ _tag: "File" as const, path: file })),
    capacity: Effect.promise(() =>
      fs.mkdir(root, { recursive: true }).then(() => fs.statfs(root)).then(
        (stats) => ({ freeBytes: stats.bavail * stats.bsize, totalBytes: stats.blocks * stats.bsize }),
        () => undefined
      )
    ),
    check: Effect.promise(() =>
      fs.mkdir(root, { recursive: true }).then(() => fs.access(root, fs.constants.W_OK)).then(
        () => undefined,
        (error) => `recordings directory not writable: ${describe(error)}`
      )
    )
  })
}

/** The store under `<data>/recordings`. */
export const layer = Layer.effect(
  SegmentStore,
  Effect.map(DataDir, (dataDir) => make(path.join(dataDir.path, "recordings")))
)
