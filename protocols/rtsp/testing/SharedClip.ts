/**
 * The test clip every simulator test shares: encoded once into a directory
 * under the OS temp dir (atomic rename makes concurrent first encodes from
 * parallel test files safe), then loaded per test file.
 */
import * as Os from "node:os"
import * as Path from "node:path"
import { NodeServices } from "@effect/platform-node"
import { Effect } from "effect"
import { requireBinary } from "../../../test/support/Binaries.ts"
import * as TestClip from "../TestClip.ts"

export const sharedClipDir = Path.join(Os.tmpdir(), "vms-test-clip")
export const ffmpegPath = process.env["VMS_FFMPEG_PATH"] ?? "ffmpeg"

/** Fails with one line naming the Debian package when ffmpeg is missing. */
export const loadSharedClip = Effect.sync(() => {
  if (process.env["VMS_FFMPEG_PATH"] === undefined) requireBinary("ffmpeg")
}).pipe(
  Effect.andThen(TestClip.load({ dataDir: sharedClipDir, ffmpegPath })),
  Effect.provide(NodeServices.layer)
)
