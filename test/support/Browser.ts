/**
 * Debian's headless Chromium driven by playwright-core, as a scoped resource:
 * a fresh profile per launch, and the flags this machine's closed network
 * needs (no background networking, no QUIC). Fails with one line naming the
 * package when chromium is missing.
 */
import { Effect } from "effect"
import { chromium, type Browser } from "playwright-core"
import { requireBinary } from "./Binaries.ts"
import { tempDir } from "./TestNode.ts"

const flags = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--autoplay-policy=no-user-gesture-required"
]

export const launchChromium = Effect.gen(function*() {
  const executablePath = requireBinary("chromium")
  const profile = yield* tempDir("chromium")
  return yield* Effect.acquireRelease(
    Effect.promise(() =>
      chromium.launchPersistentContext(profile, { executablePath, args: flags, headless: true })
    ),
    (context) => Effect.promise(() => context.close())
  )
})

export type { Browser }
