/**
 * `CameraControl` over the sharding client: every call is a message to the
 * camera's entity, wherever its shard lives. Transport failures (mailbox
 * full, no runner for the shard, storage errors) and timeouts become
 * `CameraUnavailable`; the actor's own errors pass through.
 */
import { Effect, Layer } from "effect"
import { Camera } from "../../actors/Camera.ts"
import { RecordingSegmenter } from "../../actors/RecordingSegmenter.ts"
import { CameraControl, CameraUnavailable } from "./CameraControl.ts"

const transportErrors = ["MailboxFull", "AlreadyProcessingMessage", "PersistenceError", "EntityNotAssignedToRunner"] as const

export const layer = Layer.effect(
  CameraControl,
  Effect.gen(function*() {
    const clientFor = yield* Camera.client
    const segmenterFor = yield* RecordingSegmenter.client
    const unavailable = (cameraId: string) => <A, E extends { readonly _tag: string }, R>(
      effect: Effect.Effect<A, E, R>
    ) =>
      effect.pipe(
        Effect.timeoutOrElse({
          duration: "10 seconds",
          orElse: () => Effect.fail(new CameraUnavailable({ cameraId, message: "the camera's actor did not answer within 10 s" }))
        }),
        Effect.catchIf(
          (error): error is Extract<E, { readonly _tag: typeof transportErrors[number] }> =>
            (transportErrors as ReadonlyArray<string>).includes((error as { _tag: string })._tag),
          (error) => Effect.fail(new CameraUnavailable({ cameraId, message: `the camera's actor is unreachable (${error._tag})` }))
        )
      )
    return CameraControl.of({
      // The camera first (recording follows its live stream), then its recording segmenter.
      reconcile: (cameraId) =>
        clientFor(cameraId).Reconcile().pipe(
          unavailable(cameraId),
          Effect.catchTag("CameraStoreError", (error) =>
            Effect.fail(new CameraUnavailable({ cameraId, message: error.message }))),
          Effect.andThen(segmenterFor(cameraId).Reconcile().pipe(
            unavailable(cameraId),
            Effect.catchTag("RecorderStoreError", (error) =>
              Effect.fail(new CameraUnavailable({ cameraId, message: error.message })))
          ))
        ),
      status: (cameraId) => clientFor(cameraId).GetStatus().pipe(unavailable(cameraId)),
      snapshot: (cameraId) => clientFor(cameraId).TakeSnapshot().pipe(unavailable(cameraId))
    })
  })
)
