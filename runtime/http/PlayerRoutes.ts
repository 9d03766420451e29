/**
 * A minimal live player for operators and the demo: `GET /player/{cameraId}`
 * is a page that plays `/live/{cameraId}/index.m3u8` with hls.js (served from
 * this node at `/assets/hls.min.js`, so it works without internet access) and
 * shows the camera's status. Browsers with native HLS use it directly.
 * `?src=<liveUrl>` plays a viewer session's live URL instead (from
 * `start_viewing` or `POST /api/v1/viewers`): the player's playlist fetches
 * keep the session alive, so a wall display needs nothing else.
 */
import { Effect, Layer } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import * as fs from "node:fs/promises"
import { createRequire } from "node:module"
import { cameraIdPattern } from "./LiveRoutes.ts"

const hlsScriptPath = createRequire(import.meta.url).resolve("hls.js/dist/hls.min.js")

const page = (cameraId: string) => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${cameraId} · live</title>
<style>
  body { margin: 0; background: #111; color: #ddd; font: 14px system-ui, sans-serif; }
  video { display: block; width: 100%; max-height: 90vh; background: #000; }
  #status { padding: 8px 12px; }
</style>
</head>
<body>
<video id="video" muted autoplay playsinline controls></video>
<div id="status">${cameraId}: loading…</div>
<script src="/assets/hls.min.js"></script>
<script>
  const cameraId = ${JSON.stringify(cameraId)}
  const given = new URLSearchParams(location.search).get("src")
  const source = given !== null && given.startsWith("/live/" + encodeURIComponent(cameraId) + "/")
    ? given
    : "/live/" + encodeURIComponent(cameraId) + "/index.m3u8"
  const video = document.getElementById("video")
  const status = document.getElementById("status")
  if (window.Hls && Hls.isSupported()) {
    const hls = new Hls({ liveSyncDurationCount: 2, manifestLoadingMaxRetry: 30, manifestLoadingRetryDelay: 1000 })
    hls.loadSource(source)
    hls.attachMedia(video)
    hls.on(Hls.Events.ERROR, (_, data) => { if (data.fatal) setTimeout(() => hls.loadSource(source), 2000) })
    window.player = hls
  } else {
    video.src = source
  }
  const refresh = async () => {
    try {
      const response = await fetch("/api/v1/cameras/" + encodeURIComponent(cameraId) + "/status")
      const s = await response.json()
      status.textContent = response.ok
        ? cameraId + ": " + s.status + (s.reason ? " (" + s.reason + ")" : "") + " · " + s.fps + " fps · " + Math.round(s.bitrate / 1000) + " kbit/s"
        : cameraId + ": " + (s.error?.message ?? response.status)
    } catch (e) { status.textContent = cameraId + ": " + e }
  }
  refresh()
  setInterval(refresh, 2000)
</script>
</body>
</html>
`

export const layer = Layer.mergeAll(
  HttpRouter.add(
    "GET",
    "/player/:cameraId",
    Effect.gen(function*() {
      const { cameraId } = yield* HttpRouter.params
      if (cameraId === undefined || !cameraIdPattern.test(cameraId)) {
        return HttpServerResponse.text("no such camera", { status: 404 })
      }
      return HttpServerResponse.html(page(cameraId))
    })
  ),
  HttpRouter.add(
    "GET",
    "/assets/hls.min.js",
    Effect.promise(() => fs.readFile(hlsScriptPath)).pipe(
      Effect.map((bytes) =>
        HttpServerResponse.uint8Array(bytes, {
          contentType: "text/javascript; charset=utf-8",
          headers: { "cache-control": "public, max-age=86400" }
        })
      )
    )
  )
)
