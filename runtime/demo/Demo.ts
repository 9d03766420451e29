/**
 * `vms start --demo N`: an RTSP camera simulator in the node's process with
 * N cameras, registered as `demo-0 … demo-{N-1}` (idempotent: a second start
 * registers nothing new and only repoints the URLs if the simulator's port
 * changed), so a new user sees live cameras at once. Logs what to open.
 */
import { Effect, Layer, Option } from "effect"
import { HttpServer } from "effect/http"
import { NetAddress } from "effect/net"
import * as Simulator from "../../protocols/rtsp/Simulator.ts"
import * as TestClip from "../../protocols/rtsp/TestClip.ts"
import { CameraControl } from "../cameras/CameraControl.ts"
import { CameraStore } from "../cameras/CameraStore.ts"
import { NodeConfig } from "../config/NodeConfig.ts"

/** The simulator's preferred port; a free one when it is taken. */
const preferredPort = 8554

export const demoCameraId = (index: number) => `demo-${index}`

export const layer = (cameras: number) =>
  Layer.effectDiscard(
    Effect.gen(function*() {
      const config = yield* NodeConfig
      const store = yield* CameraStore
      const control = yield* CameraControl
      const server = yield* HttpServer.HttpServer
      const clip = yield* TestClip.load({ dataDir: config.dataDir, ffmpegPath: config.ffmpegPath })
      const simulator = yield* Simulator.make({ cameras, port: preferredPort }, clip).pipe(
        Effect.catch(() => Simulator.make({ cameras, port: 0 }, clip))
      )
      let registered = 0
      for (let index = 0; index < cameras; index++) {
        const id = demoCameraId(index)
        const url = simulator.url(index)
        const created = yield* store.createIfMissing({
          id,
          agencyId: "default",
          name: `Demo camera ${index}`,
          url,
          enabled: true,
          recording: false,
          retentionDays: null,
          locationName: "Simulator",
          latitude: null,
          longitude: null
        })
        if (created) registered++
        else {
          const existing = yield* store.get(id)
          if (Option.isSome(existing) && existing.value.url !== url) yield* store.update(id, { url })
        }
        yield* control.reconcile(id).pipe(Effect.ignore)
      }
      const base = NetAddress.formatUrlUnsafe(server.address)
      yield* Effect.logInfo("demo cameras ready").pipe(
        Effect.annotateLogs({
          cameras,
          newlyRegistered: registered,
          simulator: `rtsp://127.0.0.1:${simulator.port}/cam{0..${cameras - 1}}`,
          cameraList: `${base}/api/v1/cameras`,
          player: `${base}/player/${demoCameraId(0)}`,
          livePlaylist: `${base}/live/${demoCameraId(0)}/index.m3u8`,
          snapshot: `${base}/api/v1/cameras/${demoCameraId(0)}/snapshot`,
          status: `${base}/api/v1/cameras/${demoCameraId(0)}/status`
        })
      )
    }).pipe(Effect.annotateLogs({ component: "demo" }))
  )
