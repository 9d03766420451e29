/**
 * `vms bench rpc` and `vms bench events`: the client API of a real node
 * (`vms start` as a child process, its own database) driven from this
 * process.
 *
 * - rpc: `get_camera_status` at a fixed number of concurrent calls (64 by
 *   default, a closed loop) through the typed client on `/rpc` and through a
 *   plain JSON-RPC client on `/ws`, against disabled cameras (no ffmpeg
 *   runs; the status comes from the node's status view, which the actors'
 *   events keep current). Latency is per call, as the client sees it; the
 *   node's, the client's and the machine's CPU over the window are reported
 *   beside it. Budget: p99 ≤ 5 ms on one node.
 * - events: N WebSocket clients (1,000 by default) on `/ws`, each subscribed
 *   to `camera_status_update`; a camera is switched off and on, and each
 *   notification's latency is its arrival here minus the status's
 *   `updatedAt` (set by the actor when the status changed: actor → bus →
 *   subscription → socket → client), after at least three warm-up cycles,
 *   with each event's spread over the clients. Budget: p99 ≤ 20 ms.
 *
 * Both authenticate with an operator API token (hashed lookup, agency
 * check) created through REST while the fresh node is in setup mode.
 * After the node stops, each runs its floor (`WsRpcFloor.ts`,
 * `WsFanoutFloor.ts`: the same traffic against a plain `ws` server with no
 * application code) and reports it beside the node's figures, measured in
 * the same minute on the same machine.
 * Writes `<scenario>.json` and `<scenario>.md` into the results directory.
 */
import type { Effect, Scope } from "effect"
import type { ApiBenchOptions } from "./ApiBenchKit.ts"
import { runEventsBench } from "./EventsBench.ts"
import { runRpcBench } from "./RpcBench.ts"

/** Runs the scenario and answers its result, as written to `<scenario>.json`. */
export const runApiBench = (options: ApiBenchOptions): Effect.Effect<{ readonly withinBudget: boolean }, unknown, Scope.Scope> =>
  options.scenario === "rpc" ? runRpcBench(options) : runEventsBench(options)
