import { assert, describe, it } from "@effect/vitest"
import { delayMs } from "./Backoff.ts"
import { ingestArgs } from "./IngestProcess.ts"
import { makeProgressParser } from "./Progress.ts"
import { cleanReason, isReasonLine, parseStreamInfo } from "./StderrLog.ts"

describe("ffmpeg -progress", () => {
  it("folds key=value lines into one block per progress= line", () => {
    const parse = makeProgressParser()
    const lines = [
      "frame=45", "fps=42.22", "stream_0_0_q=-1.0", "bitrate=N/A", "total_size=N/A", "out_time_us=2866678",
      "out_time_ms=2866678", "out_time=00:00:02.866678", "dup_frames=0", "drop_frames=3", "speed=2.69x"
    ]
    for (const line of lines) assert.isUndefined(parse(line))
    const block = parse("progress=continue")
    assert.deepStrictEqual(block, { frames: 45, fps: 42.22, droppedFrames: 3, outTimeUs: 2866678, speed: 2.69, end: false })
    // The next block starts empty; speed=N/A is unknown, not zero.
    parse("frame=60")
    parse("speed=N/A")
    assert.deepStrictEqual(parse("progress=end"), { frames: 60, fps: 0, droppedFrames: 0, outTimeUs: 0, speed: undefined, end: true })
    assert.isUndefined(parse("garbage without equals"))
  })
})

describe("ffmpeg stderr", () => {
  it("reads codec and resolution from the input's video stream line", () => {
    assert.deepStrictEqual(
      parseStreamInfo("  Stream #0:0: Video: h264 (Main), yuv420p(progressive), 1280x720 [SAR 1:1 DAR 16:9], 15 fps, 15 tbr, 90k tbn"),
      { codec: "h264", width: 1280, height: 720 }
    )
    assert.deepStrictEqual(
      parseStreamInfo("  Stream #0:1[0x101]: Video: hevc (Main) ([36][0][0][0] / 0x0024), yuv420p(tv), 3840x2160, 25 fps"),
      { codec: "hevc", width: 3840, height: 2160 }
    )
    assert.isUndefined(parseStreamInfo("  Stream #0:1: Audio: pcm_mulaw, 8000 Hz, mono, s16, 64 kb/s"))
  })

  it("keeps failure lines as reasons, without noise, component prefixes or credentials", () => {
    assert.isFalse(isReasonLine("[segment @ 0x5594015b1500] Opening 'seg_101.ts' for writing"))
    assert.isFalse(isReasonLine("  Stream mapping:"))
    assert.isFalse(isReasonLine("Exiting normally, received signal 15."))
    assert.isTrue(isReasonLine("rtsp://admin:secret@10.0.0.7/stream1: Connection refused"))
    assert.strictEqual(
      cleanReason("[rtsp @ 0x55d5c0d0] method DESCRIBE failed: 401 Unauthorized"),
      "method DESCRIBE failed: 401 Unauthorized"
    )
    assert.strictEqual(
      cleanReason("rtsp://admin:secret@10.0.0.7/stream1: Connection refused"),
      "rtsp://***:***@10.0.0.7/stream1: Connection refused"
    )
  })
})

describe("restart backoff", () => {
  const policy = { initialMs: 1_000, maxMs: 30_000, resetAfterMs: 60_000 }
  it("doubles from 1 s up to 30 s, jittered over the upper half", () => {
    assert.strictEqual(delayMs(policy, 1, () => 1), 1_000)
    assert.strictEqual(delayMs(policy, 1, () => 0), 500)
    assert.strictEqual(delayMs(policy, 3, () => 1), 4_000)
    assert.strictEqual(delayMs(policy, 10, () => 1), 30_000)
    assert.strictEqual(delayMs(policy, 50, () => 0), 15_000)
  })
})

describe("ingest arguments", () => {
  it("takes video only over TCP, copies it and cuts numbered MPEG-TS chunks on keyframes", () => {
    const args = ingestArgs({
      ffmpegPath: "ffmpeg", url: "rtsp://cam/1", dir: "/tmp/x", startNumber: 42, chunkSeconds: 1, socketTimeoutMs: 5_000
    }).join(" ")
    assert.include(args, "-rtsp_transport tcp -timeout 5000000 -analyzeduration 0 -probesize 32 -i rtsp://cam/1 -map 0:v:0 -c copy -f segment")
    assert.include(args, "-segment_start_number 42")
    assert.include(args, "-segment_format mpegts")
  })
})
