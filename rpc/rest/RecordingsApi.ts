/**
 * The REST contract for recordings (`/api/v1/recordings`,
 * `/api/v1/cameras/{id}/timeline`, `/api/v1/cameras/{id}/recording`):
 * endpoints, schemas and errors. Handlers live in `RecordingsHandlers.ts`;
 * the error envelope is `CamerasApi`'s.
 */
import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "effect/http-api"
import { CameraView } from "../../runtime/cameras/CameraModel.ts"
import { CameraIdParam, Instant, RecordingView, TimelineView } from "../../runtime/recording/RecordingModel.ts"
import { CameraNotFoundError, CameraUnavailableError } from "./CamerasApi.ts"

export const maxRecordingPage = 1_000
export const defaultRecordingPage = 100

const pageMessage = { message: `must be an integer from 1 to ${maxRecordingPage}` }
const RecordingPageSize = Schema.Number.check(
  Schema.isInt(pageMessage),
  Schema.isBetween({ minimum: 1, maximum: maxRecordingPage }, pageMessage)
)

const Cursor = Schema.String.check(Schema.isPattern(/^\d{1,16}$/, { message: "must be a nextCursor from a previous page" }))

export const RecordingPage = Schema.Struct({
  items: Schema.Array(RecordingView),
  /** Present when more segments follow: pass it back as `cursor`. */
  nextCursor: Schema.optionalKey(Schema.String)
}).annotate({ identifier: "RecordingPage" })

export const RecordingToggle = Schema.Struct({ enabled: Schema.Boolean }).annotate({ identifier: "RecordingToggle" })

const range = { from: Instant, to: Instant }

export class RecordingsApi extends HttpApiGroup.make("recordings")
  .add(
    HttpApiEndpoint.get("list", "/recordings", {
      query: {
        cameraId: CameraIdParam,
        ...range,
        cursor: Schema.optionalKey(Cursor),
        limit: Schema.optionalKey(RecordingPageSize)
      },
      success: RecordingPage
    }).annotate(OpenApi.Description, "Recorded segments of a camera overlapping [from, to), oldest first"),
    HttpApiEndpoint.get("timeline", "/cameras/:id/timeline", {
      params: { id: CameraIdParam },
      query: range,
      success: TimelineView,
      error: CameraNotFoundError
    }).annotate(OpenApi.Description, "Recorded spans and gaps of a camera within [from, to)"),
    HttpApiEndpoint.post("setRecording", "/cameras/:id/recording", {
      params: { id: CameraIdParam },
      payload: RecordingToggle,
      success: CameraView,
      error: [CameraNotFoundError, CameraUnavailableError]
    }).annotate(OpenApi.Description, "Switches the camera's recording on or off; live is not interrupted")
  )
  .annotate(OpenApi.Description, "Recordings: segments, timeline with gaps, recording on/off")
{}
