import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Scope, Stream } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import { eventually } from "../../test/support/Eventually.ts"
import { IngestSpawner, SpawnError } from "./IngestSpawner.ts"

const text = (stream: Stream.Stream<Uint8Array>) =>
  Stream.runFold(stream, () => "", (all, bytes) => all + Buffer.from(bytes).toString("utf8"))

/** Running (a zombie waiting to be reaped counts as gone). */
const alive = (pid: number) => {
  try {
    return fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]![0] !== "Z"
  } catch {
    return false
  }
}

/** The nice value from /proc/<pid>/stat (field 19). */
const niceOf = (pid: number) => Number(fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")[16])

/** Pids of this process's spawn helpers (setpriv execs into node, so the helper is a direct child). */
const helpersOf = (parent: number) =>
  fs.readdirSync("/proc").filter((entry) => /^\d+$/.test(entry)).map(Number).filter((pid) => {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
      return Number(stat[1]) === parent && fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("SpawnHelper.ts") && stat[0] !== "Z"
    } catch {
      return false
    }
  })

const sh = (script: string) => ({ file: "/bin/sh", args: ["-c", script], cwd: os.tmpdir(), niceness: 10 })

describe("ingest spawner", () => {
  it.live("relays stdout, stderr and fd 3 in full, then the exit code, with the niceness set", () =>
      Effect.gen(function*() {
        const spawner = yield* IngestSpawner
        const child = yield* spawner.spawn(
          sh("read x < /dev/null; for i in $(seq 1 2000); do echo line-$i; done; echo err >&2; echo three >&3; sleep 0.3; exit 7")
        )
        assert.strictEqual(niceOf(child.pid), 10)
        const [stdout, stderr, fd3, code] = yield* Effect.all(
          [text(child.stdout), text(child.stderr), text(child.fd3), child.exitCode],
          { concurrency: "unbounded" }
        )
        assert.strictEqual(stdout.split("\n").filter((line) => line !== "").length, 2000)
        assert.isTrue(stdout.endsWith("line-2000\n"))
        assert.strictEqual(stderr, "err\n")
        assert.strictEqual(fd3, "three\n")
        assert.strictEqual(code, 7)
      }).pipe(Effect.scoped, Effect.provide(IngestSpawner.layer)))

  it.live("closing the scope ends the process group: SIGTERM, then SIGKILL for one that ignores it", () =>
      Effect.gen(function*() {
        const spawner = yield* IngestSpawner
        const scope = yield* Scope.make()
        const polite = yield* spawner.spawn(sh("exec sleep 30")).pipe(Scope.provide(scope))
        const stubborn = yield* spawner.spawn(sh("trap '' TERM; echo ready; while true; do sleep 0.05; done")).pipe(
          Scope.provide(scope)
        )
        // The trap is set once it speaks.
        yield* Stream.runHead(stubborn.stdout)
        const started = Date.now()
        yield* Scope.close(scope, Exit.void)
        const took = Date.now() - started
        assert.isFalse(alive(polite.pid))
        assert.isFalse(alive(stubborn.pid))
        assert.isAtLeast(took, 900, "the stubborn one had a second to go")
        assert.strictEqual(yield* polite.exitCode, 128 + os.constants.signals.SIGTERM)
        assert.strictEqual(yield* stubborn.exitCode, 128 + os.constants.signals.SIGKILL)
      }).pipe(Effect.provide(IngestSpawner.layer)))

  it.live("a file that cannot be started fails with the reason", () =>
      Effect.gen(function*() {
        const spawner = yield* IngestSpawner
        const error = yield* Effect.flip(
          spawner.spawn({ file: "/no/such/ffmpeg", args: [], cwd: os.tmpdir(), niceness: 10 })
        )
        assert.instanceOf(error, SpawnError)
        assert.include(error.message, "ENOENT")
      }).pipe(Effect.scoped, Effect.provide(IngestSpawner.layer)))

  it.live("many at once start side by side and all report", () =>
      Effect.gen(function*() {
        const spawner = yield* IngestSpawner
        const codes = yield* Effect.forEach(
          Array.from({ length: 12 }, (_, i) => i),
          (i) => Effect.flatMap(spawner.spawn(sh(`echo ${i}; exit ${i}`)), (child) => child.exitCode),
          { concurrency: "unbounded" }
        )
        assert.deepStrictEqual(codes, Array.from({ length: 12 }, (_, i) => i))
      }).pipe(Effect.scoped, Effect.provide(IngestSpawner.layer)))

  it.live("children die with the spawn helper when the layer closes (setpriv's parent-death signal)", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(IngestSpawner.layer, scope)
      const spawner = Context.get(context, IngestSpawner)
      // A child scope that is never closed: only the helper's end can stop it.
      const leaked = yield* spawner.spawn({
        file: "/usr/bin/setpriv",
        args: ["--pdeathsig", "KILL", "--", "/bin/sleep", "30"],
        cwd: os.tmpdir(),
        niceness: 10
      }).pipe(Scope.provide(yield* Scope.make()))
      assert.isTrue(alive(leaked.pid))
      yield* Scope.close(scope, Exit.void)
      yield* eventually("the child is gone", Effect.sync(() => alive(leaked.pid) ? undefined : true), 5_000)
    }))

  it.live("a helper that dies takes its children along; their runs end and the next spawn gets a new helper", () =>
    Effect.gen(function*() {
      const spawner = yield* IngestSpawner
      const child = yield* spawner.spawn({
        file: "/usr/bin/setpriv",
        args: ["--pdeathsig", "KILL", "--", "/bin/sleep", "30"],
        cwd: os.tmpdir(),
        niceness: 10
      })
      const [helperPid] = helpersOf(process.pid)
      assert.isDefined(helperPid)
      process.kill(helperPid!, "SIGKILL")
      assert.strictEqual(yield* child.exitCode, -1)
      yield* eventually("the child is gone", Effect.sync(() => alive(child.pid) ? undefined : true), 5_000)
      const next = yield* spawner.spawn(sh("exit 3"))
      assert.strictEqual(yield* next.exitCode, 3)
      assert.notInclude(helpersOf(process.pid), helperPid)
    }).pipe(Effect.scoped, Effect.provide(IngestSpawner.layer)))
})
