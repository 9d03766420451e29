/**
 * The simulator's single pacing clock: calls `onTick(tick, wallTimeMs)` at a
 * fixed rate against a monotonic clock without drift. When the event loop
 * falls behind it catches up on the missed ticks (so every stream keeps its
 * exact average frame rate); after a long stall it skips ahead instead.
 */
import { performance } from "node:perf_hooks"

export class FrameClock {
  readonly periodMs: number
  private readonly onTick: (tick: number, wallTimeMs: number) => void
  private readonly maxCatchUpTicks: number
  private startMonotonic = 0
  private startWall = 0
  private nextTick = 0
  private timer: NodeJS.Timeout | undefined

  constructor(fps: number, onTick: (tick: number, wallTimeMs: number) => void) {
    this.periodMs = 1000 / fps
    this.onTick = onTick
    this.maxCatchUpTicks = fps * 2
  }

  start(): void {
    if (this.timer !== undefined) return
    this.startMonotonic = performance.now()
    this.startWall = Date.now()
    this.nextTick = 0
    this.schedule()
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
  }

  private schedule(): void {
    const due = this.startMonotonic + this.nextTick * this.periodMs
    this.timer = setTimeout(this.run, Math.max(0, due - performance.now()))
  }

  private readonly run = (): void => {
    const elapsed = performance.now() - this.startMonotonic
    let dueTick = Math.floor(elapsed / this.periodMs)
    if (dueTick - this.nextTick > this.maxCatchUpTicks) this.nextTick = dueTick - this.maxCatchUpTicks
    while (this.nextTick <= dueTick) {
      const tick = this.nextTick++
      this.onTick(tick, this.startWall + tick * this.periodMs)
      dueTick = Math.floor((performance.now() - this.startMonotonic) / this.periodMs)
    }
    if (this.timer !== undefined) this.schedule()
  }
}
