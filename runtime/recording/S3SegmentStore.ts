/**
 * The segment store of cluster mode: objects in the `VMS_S3_BUCKET` bucket
 * at `VMS_S3_ENDPOINT`. Uploads stream the spool file through lib-storage's
 * `Upload` (multipart above 8 MiB); players and ffmpeg read objects through
 * presigned GET URLs. Checksums are computed and validated only when S3
 * requires them: with the SDK's newer defaults, streamed uploads to
 * S3-compatible servers such as s3rver are silently corrupted.
 */
import { CreateBucketCommand, DeleteObjectCommand, GetObjectCommand, HeadBucketCommand, HeadObjectCommand, S3Client } from "@aws-sdk/client-s3"
import { Upload } from "@aws-sdk/lib-storage"
import { getSignedUrl } from "@aws-sdk/s3-request-presigner"
import { Effect, Layer, Option, Redacted } from "effect"
import * as fsSync from "node:fs"
import { NodeConfig } from "../config/NodeConfig.ts"
import { isSegmentKey, SegmentStore, SegmentStoreError } from "./SegmentStore.ts"

const describe = (cause: unknown) =>
  cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause)

const partSize = 8 * 1024 * 1024

export interface S3Options {
  readonly endpoint: string
  readonly bucket: string
  readonly region: string
  readonly forcePathStyle: boolean
  readonly accessKeyId: string | undefined
  readonly secretAccessKey: string | undefined
}

export const make = (options: S3Options) =>
  Effect.gen(function*() {
    const client = yield* Effect.acquireRelease(
      Effect.sync(() =>
        new S3Client({
          endpoint: options.endpoint,
          region: options.region,
          forcePathStyle: options.forcePathStyle,
          requestChecksumCalculation: "WHEN_REQUIRED",
          responseChecksumValidation: "WHEN_REQUIRED",
          maxAttempts: 2,
          ...(options.accessKeyId !== undefined && options.secretAccessKey !== undefined
            ? { credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey } }
            : {})
        })
      ),
      (client) => Effect.sync(() => client.destroy())
    )
    const Bucket = options.bucket

    const attempt = <A>(operation: string, key: string, run: (signal: AbortSignal) => Promise<A>) =>
      isSegmentKey(key)
        ? Effect.tryPromise({
          try: run,
          catch: (cause) => new SegmentStoreError({ operation, key, message: describe(cause) })
        })
        : Effect.fail(new SegmentStoreError({ operation, key, message: "not a segment key" }))

    /** Creates the bucket when it is missing (embedded S3 servers start empty). */
    const ensureBucket = Effect.tryPromise(async () => {
      try {
        await client.send(new HeadBucketCommand({ Bucket }))
      } catch {
        await client.send(new CreateBucketCommand({ Bucket }))
      }
    })

    yield* ensureBucket.pipe(
      Effect.catch((error) =>
        Effect.logWarning("S3 bucket not reachable yet; uploads will retry").pipe(
          Effect.annotateLogs({ bucket: Bucket, error: describe(error.cause) })
        )
      )
    )

    return SegmentStore.of({
      kind: "s3",
      put: (key, file) =>
        attempt("put", key, async (abortSignal) => {
          const upload = new Upload({
            client,
            params: { Bucket, Key: key, Body: fsSync.createReadStream(file), ContentType: "video/mp2t" },
            partSize,
            queueSize: 2,
            leavePartsOnError: false
          })
          abortSignal.addEventListener("abort", () => void upload.abort())
          await upload.done()
        }),
      remove: (key) => attempt("remove", key, (abortSignal) => client.send(new DeleteObjectCommand({ Bucket, Key: key }), { abortSignal })),
      exists: (key) =>
        attempt("exists", key, (abortSignal) =>
          client.send(new HeadObjectCommand({ Bucket, Key: key }), { abortSignal }).then(
            () => true,
            (error: { name?: string; $metadata?: { httpStatusCode?: number } }) => {
              if (error.name === "NotFound" || error.$metadata?.httpStatusCode === 404) return false
              throw error
            }
          )),
      source: (key, validSeconds) =>
        attempt("source", key, () => getSignedUrl(client, new GetObjectCommand({ Bucket, Key: key }), { expiresIn: validSeconds })).pipe(
          Effect.map((url) => ({ _tag: "Url" as const, url }))
        ),
      capacity: Effect.succeed(undefined),
      check: ensureBucket.pipe(
        Effect.as(undefined),
        Effect.timeout("2 seconds"),
        Effect.catchCause(() => Effect.succeed(`S3 bucket ${Bucket} at ${options.endpoint} not reachable`))
      )
    })
  })

/** The store at the configured `VMS_S3_*`. */
export const layer = Layer.effect(
  SegmentStore,
  Effect.gen(function*() {
    const config = yield* NodeConfig
    return yield* make({
      endpoint: Option.getOrThrow(config.s3Endpoint),
      bucket: config.s3Bucket,
      region: config.s3Region,
      forcePathStyle: config.s3ForcePathStyle,
      accessKeyId: Option.getOrUndefined(Option.map(config.s3AccessKeyId, Redacted.value)),
      secretAccessKey: Option.getOrUndefined(Option.map(config.s3SecretAccessKey, Redacted.value))
    })
  })
)
