/**
 * Tunables of every camera pipeline on the node, with the defaults the
 * issue fixes (1 s chunks, restarts from 1 s to 30 s reset after a healthy
 * minute, a 10 s watchdog). A Reference, so tests and benchmarks can
 * override it and the node needs no layer for it.
 */
import { Context } from "effect"
import { type BackoffPolicy, defaultBackoff } from "./Backoff.ts"

export interface PipelineSettingsShape {
  readonly backoff: BackoffPolicy
  readonly stallMs: number
  readonly failuresBeforeError: number
  readonly chunkSeconds: number
  readonly socketTimeoutMs: number
}

export const PipelineSettings = Context.Reference<PipelineSettingsShape>("vms/runtime/ffmpeg/PipelineSettings", {
  defaultValue: () => ({
    backoff: defaultBackoff,
    stallMs: 10_000,
    failuresBeforeError: 2,
    chunkSeconds: 1,
    socketTimeoutMs: 5_000
  })
})
