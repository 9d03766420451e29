/**
 * The test clip every simulator test shares: encoded once into a directory
 * under the OS temp dir (atomic rename makes concurrent first encodes from
 * parallel test files safe), then loaded per test file.
 */
import * as Os from "node:os"
import * as Path from "node:path"
import { NodeServices } from "@effect/platform-node"
import { Effect } from "effect"
import * as TestClip from "../TestClip.ts"

export const sharedClipDir = Path.join(Os.tmpdir(), "vms-test-clip")
export const ffmpegPath = process.env["VMS_FFMPEG_PATH"] ?? "ffmpeg"

export const loadSharedClip = TestClip.load({ dataDir: sharedClipDir, ffmpegPath }).pipe(
  Effect.provide(NodeServices.layer)
)
