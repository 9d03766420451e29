/**
 * Where recorded segments live once they leave the spool: an object store
 * keyed by `SegmentKey`s. The contract only; `FilesystemSegmentStore`
 * (objects under `<data>/recordings`) and `S3SegmentStore` (`VMS_S3_*`)
 * build it. A `put` of a key that exists replaces it, so re-processing a
 * segment after a crash is harmless.
 */
import { Context, type Effect, Schema } from "effect"

export class SegmentStoreError extends Schema.TaggedError<SegmentStoreError>()("SegmentStoreError", {
  operation: Schema.String,
  key: Schema.String,
  message: Schema.String
}) {}

/** How a player or ffmpeg reads an object: a local file, or a URL it may fetch for a while. */
export type SegmentSource =
  | { readonly _tag: "File"; readonly path: string }
  | { readonly _tag: "Url"; readonly url: string }

export class SegmentStore extends Context.Service<SegmentStore, {
  /** `filesystem` or `s3`, for logs and readiness. */
  readonly kind: string
  /** Stores the file's bytes under `key` (the file is left in place). */
  readonly put: (key: string, file: string, bytes: number) => Effect.Effect<void, SegmentStoreError>
  /** Deletes the object; deleting a missing object succeeds. */
  readonly remove: (key: string) => Effect.Effect<void, SegmentStoreError>
  readonly exists: (key: string) => Effect.Effect<boolean, SegmentStoreError>
  /** Where to read the object from, valid for at least `validSeconds`. */
  readonly source: (key: string, validSeconds: number) => Effect.Effect<SegmentSource, SegmentStoreError>
  /** Free and total bytes where the store has a bounded disk (filesystem), else undefined. */
  readonly capacity: Effect.Effect<{ readonly freeBytes: number; readonly totalBytes: number } | undefined>
  /** Reachability, for `/health/ready` and the uploader's logs: `undefined` when fine. */
  readonly check: Effect.Effect<string | undefined>
}>()("vms/runtime/recording/SegmentStore") {}

/** The object key of a segment: `<cameraId>/<yyyy>/<mm>/<dd>/<startMs>.ts` (UTC). */
export const segmentKey = (cameraId: string, startMs: number): string => {
  const day = new Date(startMs).toISOString().slice(0, 10).split("-")
  return `${cameraId}/${day[0]}/${day[1]}/${day[2]}/${startMs}.ts`
}

const keyPattern = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}\/\d{4}\/\d{2}\/\d{2}\/\d{1,16}\.ts$/

/** Keys come from our own index, but a store never touches a path outside its root. */
export const isSegmentKey = (key: string): boolean => keyPattern.test(key)

