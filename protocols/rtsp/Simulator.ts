/**
 * The RTSP camera simulator as a scoped Effect resource: `make` serves
 * `rtsp://host:port/cam0 … cam{N-1}` from one in-memory test clip and returns
 * a handle with the mount URLs, live statistics and fault controls (drop,
 * hang, refuse, resume per mount; refuse/resume of the whole listener).
 * Closing the scope closes every socket and the listener.
 *
 * The `Simulator` service tag carries the same handle for code that wants it
 * from the context (`Simulator.layer`).
 */
import { Context, Effect, type FileSystem, Layer, type Path, Schema, type Scope } from "effect"
import type { ChildProcessSpawner } from "effect/process"
import { serveFaultControl } from "./FaultControl.ts"
import { FaultMode, type Mount } from "./Mount.ts"
import { MountNotFound, SimulatorError } from "./SimulatorError.ts"
import { SimulatorServer } from "./SimulatorServer.ts"
import * as TestClip from "./TestClip.ts"
import { bindUdpPorts } from "./UdpPorts.ts"

export { MountNotFound, SimulatorError } from "./SimulatorError.ts"

const withDefault = <S extends Schema.Top>(schema: S, value: S["Encoded"]) =>
  schema.pipe(Schema.withDecodingDefaultKey(Effect.succeed(value)))

export class SimulatorOptions extends Schema.Class<SimulatorOptions>("vms/protocols/rtsp/SimulatorOptions")({
  cameras: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 10_000 })),
  /** 0 picks a free port. */
  port: withDefault(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 65535 })), 8554),
  host: withDefault(Schema.String, "127.0.0.1"),
  /** Announced in `Session: …;timeout=`; a session that sends nothing for this long is ended. */
  sessionTimeoutSeconds: withDefault(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 3600 })), 60),
  /** A TCP client with more than this queued skips frames until it drains, then resumes at a keyframe. */
  maxQueuedBytes: withDefault(Schema.Int.check(Schema.isGreaterThanOrEqualTo(64 * 1024)), 1024 * 1024),
  senderReportIntervalSeconds: withDefault(Schema.Finite.check(Schema.isGreaterThan(0)), 5),
  listenBacklog: withDefault(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)), 1024),
  /** Port of the HTTP fault-control endpoint (0 picks one); none when absent. */
  controlPort: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 65535 })))
}) {}

export const MountStats = Schema.Struct({
  name: Schema.String,
  mode: FaultMode,
  connections: Schema.Int,
  sessions: Schema.Int,
  playing: Schema.Int
})
export type MountStats = typeof MountStats.Type

export const SimulatorStats = Schema.Struct({
  port: Schema.Int,
  listening: Schema.Boolean,
  connectionsOpen: Schema.Int,
  connectionsAccepted: Schema.Int,
  sessions: Schema.Int,
  sessionsExpired: Schema.Int,
  playing: Schema.Int,
  packetsSent: Schema.Number,
  bytesSent: Schema.Number,
  framesSent: Schema.Number,
  framesDropped: Schema.Number,
  mounts: Schema.Array(MountStats)
})
export type SimulatorStats = typeof SimulatorStats.Type

/** A mount by index (`3`) or name (`"cam3"`). */
export type MountRef = string | number

export interface SimulatorHandle {
  readonly host: string
  readonly port: number
  /** The shared server RTP/RTCP UDP ports. */
  readonly rtpPorts: readonly [number, number]
  /** Port of the HTTP fault-control endpoint, when enabled. */
  readonly controlPort: number | undefined
  readonly mounts: ReadonlyArray<string>
  url(index: number): string
  readonly stats: Effect.Effect<SimulatorStats>
  /** Closes every connection that addressed the mount; new connections are accepted. */
  drop(mount: MountRef): Effect.Effect<number, MountNotFound>
  /** Keeps sockets open but stops media and RTSP answers for the mount. */
  hang(mount: MountRef): Effect.Effect<void, MountNotFound>
  /** New clients of the mount get `503 Service Unavailable` and are disconnected. */
  refuse(mount: MountRef): Effect.Effect<void, MountNotFound>
  /** Back to normal: answering and streaming (playing clients restart at a keyframe). */
  resume(mount: MountRef): Effect.Effect<void, MountNotFound>
  /** Closes the listener: connects get ECONNREFUSED; established connections stay. */
  readonly refuseAll: Effect.Effect<void>
  /** Reopens the listener on the same port. */
  readonly resumeAll: Effect.Effect<void, SimulatorError>
}

export const statsOf = (server: SimulatorServer): SimulatorStats => {
  const mounts = server.snapshot()
  return {
    port: server.port,
    listening: server.listening,
    connectionsOpen: server.connections.size,
    connectionsAccepted: server.connectionsAccepted,
    sessions: server.sessionCount,
    sessionsExpired: server.sessionsExpired,
    playing: mounts.reduce((sum, mount) => sum + mount.playing, 0),
    packetsSent: server.counters.packets,
    bytesSent: server.counters.bytes,
    framesSent: server.counters.frames,
    framesDropped: server.counters.framesDropped,
    mounts
  }
}

/** Serves the mounts until the scope closes. */
export const make = Effect.fn("Simulator.make")(function*(
  input: typeof SimulatorOptions.Encoded,
  clip: TestClip.TestClip
): Effect.fn.Return<SimulatorHandle, SimulatorError, Scope.Scope> {
  const options = yield* Schema.decodeUnknownEffect(SimulatorOptions)(input).pipe(
    Effect.mapError((error) => new SimulatorError({ reason: error.message }))
  )
  let server: SimulatorServer | undefined
  const udp = yield* bindUdpPorts(options.host, (address, port) => server?.udpPacket(address, port))
  const core = new SimulatorServer(options, clip, udp)
  server = core
  yield* Effect.acquireRelease(
    Effect.tryPromise({
      try: () => core.start(options.port),
      catch: (cause) =>
        new SimulatorError({ reason: `cannot listen on ${options.host}:${options.port}: ${String(cause)}` })
    }),
    () => Effect.sync(() => core.close())
  ).pipe(Effect.onError(() => Effect.sync(() => core.close())))
  const controlPort = options.controlPort === undefined
    ? undefined
    : yield* serveFaultControl(core, options.host, options.controlPort, () => statsOf(core))

  const withMount = (ref: MountRef, f: (mount: Mount) => void) =>
    Effect.suspend(() => {
      const mount = core.findMount(ref)
      if (mount === undefined) return Effect.fail(new MountNotFound({ mount: String(ref) }))
      f(mount)
      return Effect.void
    })

  return {
    host: options.host,
    port: core.port,
    rtpPorts: udp.ports,
    controlPort,
    mounts: core.mounts.map((mount) => mount.name),
    url: (index) => `rtsp://${options.host}:${core.port}/cam${index}`,
    stats: Effect.sync(() => statsOf(core)),
    drop: (ref) =>
      Effect.suspend(() => {
        const mount = core.findMount(ref)
        return mount === undefined
          ? Effect.fail(new MountNotFound({ mount: String(ref) }))
          : Effect.succeed(mount.dropConnections())
      }),
    hang: (ref) => withMount(ref, (mount) => core.setMode(mount, "hang")),
    refuse: (ref) => withMount(ref, (mount) => core.setMode(mount, "refuse")),
    resume: (ref) => withMount(ref, (mount) => core.setMode(mount, "normal")),
    refuseAll: Effect.sync(() => core.stopListening()),
    resumeAll: Effect.tryPromise({
      try: () => core.listen(),
      catch: (cause) => new SimulatorError({ reason: `cannot listen again on ${core.port}: ${String(cause)}` })
    }).pipe(Effect.asVoid)
  } satisfies SimulatorHandle
})

export class Simulator extends Context.Service<Simulator, SimulatorHandle>()("vms/protocols/rtsp/Simulator") {
  /** Encodes/loads the clip from `clip` options and serves it. */
  static readonly layer = (
    options: typeof SimulatorOptions.Encoded,
    clip: typeof TestClip.TestClipOptions.Encoded
  ): Layer.Layer<
    Simulator,
    SimulatorError | TestClip.TestClipError,
    ChildProcessSpawner.ChildProcessSpawner | FileSystem.FileSystem | Path.Path
  > => Layer.effect(Simulator, Effect.flatMap(TestClip.load(clip), (loaded) => make(options, loaded)))
}
