/**
 * The warm-start shim (`warm-start.c`, an LD_PRELOAD library that holds a
 * started ffmpeg before its main until it is told what to run), compiled on
 * this machine with its C compiler. The library is named after a hash of
 * the source, so a node builds it once per version of the source into its
 * data directory and then reuses it; a container image builds it beside its
 * source (deploy/Dockerfile). No compiler, or a failed build: ffmpeg starts
 * cold, as before.
 */
import { Effect, Option } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"

const sourcePath = path.join(import.meta.dirname, "warm-start.c")

/** Debian's `cc` (gcc or clang), then those by name. */
const compilers = ["/usr/bin/cc", "/usr/bin/gcc", "/usr/bin/clang"]

/** Builds (or finds, already built) the shim in `dir`; its path, or none when it cannot be built here. */
export const build = (dir: string): Effect.Effect<Option.Option<string>, never, ChildProcessSpawner.ChildProcessSpawner> =>
  Effect.gen(function*() {
    const source = yield* Effect.sync(() => fs.readFileSync(sourcePath))
    const name = `libvms-warm-start-${createHash("sha256").update(source).digest("hex").slice(0, 12)}.so`
    // Built with the image (deploy/Dockerfile), beside its source; or by an earlier start of this node.
    const prebuilt = [path.join(import.meta.dirname, name), path.join(dir, name)].find((candidate) => fs.existsSync(candidate))
    if (prebuilt !== undefined) return Option.some(prebuilt)
    const target = path.join(dir, name)
    const compiler = compilers.find((candidate) => fs.existsSync(candidate))
    if (compiler === undefined) {
      yield* Effect.logInfo("no C compiler (package gcc): ffmpeg processes start cold")
      return Option.none()
    }
    fs.mkdirSync(dir, { recursive: true })
    // Built beside the target and renamed: a node never loads a half-written library.
    const partial = `${target}.${process.pid}.partial`
    const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
    const output = yield* spawner.string(
      ChildProcess.make(compiler, ["-shared", "-fPIC", "-O2", "-o", partial, sourcePath, "-ldl"], { stdin: "ignore" }),
      { includeStderr: true }
    ).pipe(Effect.catch((error) => Effect.succeed(`could not run ${compiler}: ${error.message}`)))
    if (!fs.existsSync(partial)) {
      yield* Effect.logWarning("could not build the ffmpeg warm-start shim: ffmpeg processes start cold").pipe(
        Effect.annotateLogs({ compiler, output: output.trim().slice(0, 2_000) })
      )
      return Option.none()
    }
    fs.renameSync(partial, target)
    return Option.some(target)
  })
