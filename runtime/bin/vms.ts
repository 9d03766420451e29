#!/usr/bin/env node
// Loading the CLI takes a moment; a Ctrl-C meanwhile has nothing to stop yet,
// so it ends the process with 0 instead of Node's default 130. The listener
// stays: a signal that arrives while modules load may be dispatched only
// after `main` has installed the graceful-shutdown handlers, which then act on it.
let started = false
const early = () => {
  if (!started) process.exit(0)
}
process.on("SIGINT", early)
process.on("SIGTERM", early)
const { main } = await import("../cli/Cli.ts")
started = true
main()
