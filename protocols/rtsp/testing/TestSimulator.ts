/**
 * A simulator for one test: the shared clip, a free port (0), closed with the
 * test's scope.
 */
import { Effect } from "effect"
import * as Simulator from "../Simulator.ts"
import { loadSharedClip } from "./SharedClip.ts"

export const startTestSimulator = (options: Omit<typeof Simulator.SimulatorOptions.Encoded, "port">) =>
  Effect.flatMap(loadSharedClip, (clip) => Simulator.make({ ...options, port: 0 }, clip))
