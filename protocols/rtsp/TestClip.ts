/**
 * The simulator's test clip: an H.264 Annex-B file encoded once with ffmpeg
 * (lavfi test pattern plus a visible frame counter), cached under
 * `<dataDir>/simulator/` by a key derived from the encode parameters, then
 * loaded into memory and packetized once for RTP.
 *
 * The clip has no B-frames and a fixed GOP, its length is a whole number of
 * GOPs, so looping it is seamless: decode order is presentation order and
 * every loop restarts at an IDR picture.
 */
import { createHash } from "node:crypto"
import { Effect, FileSystem, Path, Schema, Stream } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import { groupAccessUnits, NalType, nalType, profileLevelId, splitAnnexB, spsPictureSize } from "./H264.ts"
import { RtpFrame } from "./RtpH264.ts"

export class TestClipOptions extends Schema.Class<TestClipOptions>("vms/protocols/rtsp/TestClipOptions")({
  dataDir: Schema.String,
  ffmpegPath: Schema.String.pipe(Schema.withDecodingDefaultKey(Effect.succeed("ffmpeg"))),
  width: Schema.Int.pipe(Schema.withDecodingDefaultKey(Effect.succeed(1280))),
  height: Schema.Int.pipe(Schema.withDecodingDefaultKey(Effect.succeed(720))),
  fps: Schema.Int.pipe(Schema.withDecodingDefaultKey(Effect.succeed(15))),
  bitrateKbps: Schema.Int.pipe(Schema.withDecodingDefaultKey(Effect.succeed(1000))),
  /** Whole GOPs; the frame counter wraps with the clip. */
  durationSeconds: Schema.Int.pipe(Schema.withDecodingDefaultKey(Effect.succeed(10)))
}) {}

export class TestClipError extends Schema.TaggedError<TestClipError>()("TestClipError", {
  path: Schema.String,
  reason: Schema.String
}) {}

/** The clip in memory: parameter sets for SDP and one RTP template per frame. */
export interface TestClip {
  readonly path: string
  readonly fps: number
  readonly width: number
  readonly height: number
  readonly sps: Uint8Array
  readonly pps: Uint8Array
  readonly profileLevelId: string
  readonly frames: ReadonlyArray<RtpFrame>
  /** Frames per GOP (distance between IDR pictures). */
  readonly gopFrames: number
}

const FontCandidates = [
  "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
  "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
  "/usr/share/fonts/TTF/DejaVuSans.ttf",
  "/usr/share/fonts/dejavu/DejaVuSans.ttf"
]

/** Encoder arguments; any change to them changes the cache key. */
const encodeArguments = (options: TestClipOptions, fontFile: string | undefined, output: string) => {
  const size = `${options.width}x${options.height}`
  const source = `testsrc2=size=${size}:rate=${options.fps}:duration=${options.durationSeconds}`
  // Without a font, testsrc's own counter (seconds.frames) is the visible frame counter.
  const filter = fontFile === undefined ? undefined : [
    `drawtext=fontfile=${fontFile}:text='frame %{frame_num}'`,
    `x=(w-text_w)/2:y=h-text_h-40:fontsize=${Math.round(options.height / 10)}`,
    "fontcolor=white:box=1:boxcolor=black@0.7:boxborderw=12"
  ].join(":")
  const bitrate = `${options.bitrateKbps}k`
  return [
    "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
    "-f", "lavfi", "-i", fontFile === undefined ? source.replace("testsrc2", "testsrc") : source,
    ...(filter === undefined ? [] : ["-vf", filter]),
    "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "main", "-pix_fmt", "yuv420p",
    "-b:v", bitrate, "-maxrate", bitrate, "-bufsize", bitrate,
    "-g", `${options.fps}`, "-keyint_min", `${options.fps}`, "-sc_threshold", "0", "-bf", "0",
    "-x264-params", "repeat-headers=1",
    "-f", "h264", output
  ]
}

const decodeOptions = (input: typeof TestClipOptions.Encoded) =>
  Schema.decodeUnknownEffect(TestClipOptions)(input).pipe(
    Effect.mapError((error) => new TestClipError({ path: input.dataDir, reason: error.message }))
  )

/** Makes sure the clip file exists (encoding it if needed) and returns its path. */
export const ensure = Effect.fn("TestClip.ensure")(function*(input: typeof TestClipOptions.Encoded) {
  const options = yield* decodeOptions(input)
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
  const directory = path.join(options.dataDir, "simulator")
  const fail = (target: string) => (cause: unknown) =>
    new TestClipError({ path: target, reason: cause instanceof Error ? cause.message : String(cause) })

  let fontFile: string | undefined
  for (const candidate of FontCandidates) {
    if (yield* fs.exists(candidate).pipe(Effect.orElseSucceed(() => false))) {
      fontFile = candidate
      break
    }
  }
  const key = createHash("sha256").update(JSON.stringify(encodeArguments(options, fontFile, ""))).digest("hex")
  const fileName = `testclip-${options.width}x${options.height}-${options.fps}fps-${options.bitrateKbps}k-` +
    `${options.durationSeconds}s-${key.slice(0, 12)}.h264`
  const target = path.join(directory, fileName)
  if (yield* fs.exists(target).pipe(Effect.mapError(fail(target)))) return target

  yield* fs.makeDirectory(directory, { recursive: true }).pipe(Effect.mapError(fail(directory)))
  const temporary = path.join(directory, `.${fileName}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`)
  yield* Effect.logInfo("encoding simulator test clip").pipe(Effect.annotateLogs({ path: target }))
  const [exitCode, stderr] = yield* Effect.scoped(Effect.gen(function*() {
    const handle = yield* spawner.spawn(
      ChildProcess.make(options.ffmpegPath, encodeArguments(options, fontFile, temporary), { stdout: "ignore" })
    )
    const stderr = yield* handle.stderr.pipe(Stream.decodeText(), Stream.mkString)
    return [yield* handle.exitCode, stderr] as const
  })).pipe(Effect.mapError(fail(options.ffmpegPath)))
  if (exitCode !== 0) {
    yield* fs.remove(temporary, { force: true }).pipe(Effect.ignore)
    return yield* new TestClipError({ path: target, reason: `ffmpeg exited with ${exitCode}: ${stderr.trim()}` })
  }
  // Atomic: concurrent encoders (parallel test files) each rename a complete file.
  yield* fs.rename(temporary, target).pipe(Effect.mapError(fail(target)))
  return target
})

/** Ensures the clip and loads it into memory, packetized for RTP. */
export const load = Effect.fn("TestClip.load")(function*(input: typeof TestClipOptions.Encoded) {
  const options = yield* decodeOptions(input)
  const path = yield* ensure(input)
  const fs = yield* FileSystem.FileSystem
  const bytes = yield* fs.readFile(path).pipe(
    Effect.mapError((cause) => new TestClipError({ path, reason: cause.message }))
  )
  return yield* Effect.try({
    try: () => fromAnnexB(path, bytes, options.fps),
    catch: (cause) => new TestClipError({ path, reason: cause instanceof Error ? cause.message : String(cause) })
  })
})

/** Builds a clip from an Annex-B byte stream; throws when it cannot be looped cleanly. */
export const fromAnnexB = (path: string, bytes: Uint8Array, fps: number): TestClip => {
  const nals = splitAnnexB(bytes)
  const sps = nals.find((nal) => nalType(nal) === NalType.Sps)
  const pps = nals.find((nal) => nalType(nal) === NalType.Pps)
  if (sps === undefined || pps === undefined) throw new Error("no SPS/PPS in clip")
  const units = groupAccessUnits(nals)
  const keyframes = units.flatMap((unit, index) => unit.keyframe ? [index] : [])
  if (units.length === 0 || keyframes[0] !== 0) throw new Error("clip does not start with an IDR picture")
  const gopFrames = keyframes.length > 1 ? keyframes[1]! : units.length
  const { width, height } = spsPictureSize(sps)
  return {
    path,
    fps,
    width,
    height,
    sps,
    pps,
    profileLevelId: profileLevelId(sps),
    frames: units.map((unit) => new RtpFrame(unit)),
    gopFrames
  }
}
