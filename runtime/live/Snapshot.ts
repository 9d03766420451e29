/**
 * A JPEG of a camera's current picture, decoded from the first frame (a
 * keyframe: chunks start on one) of its newest live chunk, so taking a
 * snapshot never opens another RTSP session to the camera.
 */
import { Effect, Schema, Stream } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"

export class SnapshotFailed extends Schema.TaggedError<SnapshotFailed>()("SnapshotFailed", {
  message: Schema.String
}) {}

const concat = (parts: ReadonlyArray<Uint8Array>): Uint8Array => Buffer.concat(parts)

export const fromChunk = (
  ffmpegPath: string,
  chunkPath: string
): Effect.Effect<Uint8Array, SnapshotFailed, ChildProcessSpawner.ChildProcessSpawner> =>
  Effect.gen(function*() {
    const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
    const handle = yield* spawner.spawn(
      ChildProcess.make(ffmpegPath, [
        "-hide_banner", "-nostdin", "-loglevel", "error",
        "-i", chunkPath,
        "-map", "0:v:0", "-frames:v", "1",
        "-c:v", "mjpeg", "-q:v", "3",
        "-f", "image2pipe", "pipe:1"
      ], { stdin: "ignore" })
    )
    const [jpeg, errors, exitCode] = yield* Effect.all([
      Stream.runCollect(handle.stdout).pipe(Effect.map(concat)),
      Stream.runCollect(handle.stderr).pipe(Effect.map((parts) => new TextDecoder().decode(concat(parts)).trim())),
      handle.exitCode
    ], { concurrency: "unbounded" })
    if (Number(exitCode) !== 0 || jpeg.length < 4 || jpeg[0] !== 0xff || jpeg[1] !== 0xd8) {
      return yield* new SnapshotFailed({ message: errors.split("\n").at(-1) || `ffmpeg exited with code ${exitCode}` })
    }
    return jpeg
  }).pipe(
    Effect.scoped,
    Effect.catchTag("PlatformError", (error) => Effect.fail(new SnapshotFailed({ message: error.message })))
  )
