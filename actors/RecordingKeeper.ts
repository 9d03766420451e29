/**
 * The recording keeper: a cluster singleton that wakes the recording
 * segmenter of every camera that is enabled and recording, at start and
 * then every `interval`, wherever its shard lives now (after a node died,
 * the cameras' recording resumes on their new node).
 */
import { type Duration, Effect } from "effect"
import { Singleton } from "effect/cluster"
import { RecordingIndex } from "../runtime/recording/RecordingIndex.ts"
import { RecordingSegmenter } from "./RecordingSegmenter.ts"
import { wakeEach } from "./Wake.ts"

export const keepRecording = (interval: Duration.Input) =>
  Effect.gen(function*() {
    const index = yield* RecordingIndex
    const clientFor = yield* RecordingSegmenter.client
    while (true) {
      const ids = yield* index.recordingCameraIds.pipe(
        Effect.tapError((error) =>
          Effect.logWarning("recording keeper cannot list cameras").pipe(Effect.annotateLogs({ error: error.message }))
        ),
        Effect.orElseSucceed((): ReadonlyArray<string> => [])
      )
      const failed = yield* wakeEach(ids, (id) => clientFor(id).Ensure())
      if (failed > 0) yield* Effect.logWarning("recording keeper could not reach some segmenters").pipe(Effect.annotateLogs({ failed }))
      yield* Effect.sleep(interval)
    }
  }).pipe(Effect.annotateLogs({ actor: "RecordingKeeper" }))

export const layer = (interval: Duration.Input = "15 seconds") => Singleton.make("RecordingKeeper", keepRecording(interval))
