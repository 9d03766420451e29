/**
 * The recordings endpoints: segment pages and timelines read the index;
 * recording on/off writes the camera's row and tells its actors (the
 * segmenter starts or stops appending; live is untouched).
 */
import { Effect, Option } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { CameraView } from "../../runtime/cameras/CameraModel.ts"
import { CameraControl } from "../../runtime/cameras/CameraControl.ts"
import { CameraStore } from "../../runtime/cameras/CameraStore.ts"
import { AuditLog } from "../../runtime/audit/AuditLog.ts"
import { CurrentPrincipal } from "../../runtime/auth/Principal.ts"
import { RecordingIndex } from "../../runtime/recording/RecordingIndex.ts"
import { rangeProblem, RecordingView, TimelineView, toSpan } from "../../runtime/recording/RecordingModel.ts"
import * as Timeline from "../../runtime/recording/Timeline.ts"
import {
  CameraNotFoundError,
  CameraUnavailableError,
  failWith,
  InternalError,
  InvalidRequestError,
  RequestId
} from "./CamerasApi.ts"
import { defaultRecordingPage } from "./RecordingsApi.ts"
import type { Api } from "./RestApi.ts"

const internal = (error: { readonly message: string }) =>
  Effect.gen(function*() {
    const requestId = yield* RequestId
    yield* Effect.logError("recordings request failed", error.message)
    return yield* failWith(InternalError, `internal error (request ${requestId})`)
  })

const checkRange = (range: { readonly from: number; readonly to: number }) => {
  const problem = rangeProblem(range)
  return problem === undefined ? Effect.void : failWith(InvalidRequestError, `${problem.field}: ${problem.message}`, [problem])
}

/** Enough rows for a month of 60 s segments. */
const timelineRows = 50_000

export const layer = (api: typeof Api) =>
  HttpApiBuilder.group(
    api,
    "recordings",
    Effect.fn(function*(handlers) {
      const index = yield* RecordingIndex
      const store = yield* CameraStore
      const control = yield* CameraControl
      const auditLog = yield* AuditLog

      return handlers.handleAll({
        list: Effect.fn("RecordingsApi.list")(function*({ query }) {
          yield* checkRange(query)
          const limit = query.limit ?? defaultRecordingPage
          const rows = yield* index.list(
            query.cameraId,
            query.from,
            query.to,
            limit + 1,
            query.cursor === undefined ? undefined : Number(query.cursor)
          ).pipe(Effect.catchTag("RecordingIndexError", internal))
          const items = rows.slice(0, limit).map(RecordingView.fromSegment)
          return rows.length > limit ? { items, nextCursor: String(rows[limit - 1]!.startMs) } : { items }
        }),

        timeline: Effect.fn("RecordingsApi.timeline")(function*({ params, query }) {
          yield* checkRange(query)
          const rows = yield* index.list(params.id, query.from, query.to, timelineRows).pipe(
            Effect.catchTag("RecordingIndexError", internal)
          )
          if (rows.length === 0) {
            // Recordings outlive their camera; an id with neither is a mistake worth a 404.
            const camera = yield* store.get(params.id).pipe(Effect.catchTag("CameraStoreFailure", internal))
            if (Option.isNone(camera)) return yield* failWith(CameraNotFoundError, `camera '${params.id}' does not exist`)
          }
          const timeline = Timeline.build(rows, query.from, query.to)
          return new TimelineView({
            cameraId: params.id,
            from: new Date(query.from).toISOString(),
            to: new Date(query.to).toISOString(),
            recorded: timeline.recorded.map(toSpan),
            gaps: timeline.gaps.map(toSpan)
          })
        }),

        setRecording: Effect.fn("RecordingsApi.setRecording")(function*({ params, payload }) {
          const updated = yield* store.update(params.id, { recording: payload.enabled }).pipe(
            Effect.catchTags({ CameraStoreFailure: internal, AgencyNotFound: internal })
          )
          if (Option.isNone(updated)) return yield* failWith(CameraNotFoundError, `camera '${params.id}' does not exist`)
          yield* control.reconcile(params.id).pipe(
            Effect.catchTag("CameraUnavailable", (error) => failWith(CameraUnavailableError, error.message))
          )
          yield* auditLog.record(yield* CurrentPrincipal, {
            action: payload.enabled ? "recording.start" : "recording.stop",
            targetType: "camera",
            targetId: params.id,
            requestId: yield* RequestId
          })
          return CameraView.fromRecord(updated.value)
        })
      })
    })
  )
