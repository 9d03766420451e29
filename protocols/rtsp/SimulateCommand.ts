/**
 * `vms simulate`: load (encoding once if needed) the test clip and serve
 * `cameras` simulated RTSP cameras until interrupted, logging where they are.
 * The CLI wiring lives in `runtime/`; this module is the command's behaviour.
 */
import { Effect, Schema } from "effect"
import * as Simulator from "./Simulator.ts"
import * as TestClip from "./TestClip.ts"

export class SimulateOptions extends Schema.Class<SimulateOptions>("vms/protocols/rtsp/SimulateOptions")({
  cameras: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 10_000 })),
  port: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 65535 })),
  host: Schema.String.pipe(Schema.withDecodingDefaultKey(Effect.succeed("127.0.0.1"))),
  dataDir: Schema.String,
  ffmpegPath: Schema.String.pipe(Schema.withDecodingDefaultKey(Effect.succeed("ffmpeg"))),
  /** HTTP fault-control endpoint (`GET /stats`, `POST /faults/{mount}/{action}`); none when absent. */
  controlPort: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 65535 })))
}) {}

/** Runs the simulator until the fiber is interrupted (Ctrl-C under `NodeRuntime.runMain`). */
export const runSimulate = Effect.fn("Simulator.run")(function*(input: typeof SimulateOptions.Encoded) {
  const options = yield* Schema.decodeUnknownEffect(SimulateOptions)(input).pipe(
    Effect.mapError((error) => new Simulator.SimulatorError({ reason: error.message }))
  )
  const clip = yield* TestClip.load({ dataDir: options.dataDir, ffmpegPath: options.ffmpegPath })
  const simulator = yield* Simulator.make({
    cameras: options.cameras,
    port: options.port,
    host: options.host,
    ...(options.controlPort === undefined ? {} : { controlPort: options.controlPort })
  }, clip)
  for (let index = 0; index < options.cameras; index++) {
    yield* Effect.logDebug("simulated camera").pipe(Effect.annotateLogs({ url: simulator.url(index) }))
  }
  yield* Effect.logInfo("RTSP camera simulator serving").pipe(Effect.annotateLogs({
    cameras: options.cameras,
    urls: `rtsp://${simulator.host}:${simulator.port}/cam{0..${options.cameras - 1}}`,
    first: simulator.url(0),
    last: simulator.url(options.cameras - 1),
    rtpPorts: simulator.rtpPorts.join("-"),
    ...(simulator.controlPort === undefined ? {} : { control: `http://${simulator.host}:${simulator.controlPort}` }),
    clip: clip.path
  }))
  return yield* Effect.never
}, Effect.scoped)
