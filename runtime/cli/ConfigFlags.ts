/**
 * The node's configuration as CLI flags: one optional `--flag` per `VMS_*`
 * variable (`--log-level` is effect/cli's global flag). A flag wins over the
 * environment; both are decoded by the same schema (`NodeConfig.decode`).
 */
import { Effect, Option } from "effect"
import { Flag, GlobalFlag } from "effect/cli"
import * as NodeConfig from "../config/NodeConfig.ts"

type Keys = Exclude<keyof typeof NodeConfig.fields, "logLevel">

const makeFlags = () => {
  const flags: Record<string, Flag.Flag<Option.Option<string>>> = {}
  for (const [key, field] of Object.entries(NodeConfig.fields)) {
    if (key === "logLevel") continue
    const fallback = "default" in field && field.default !== undefined ? ` (default ${field.default})` : ""
    flags[key] = Flag.String(field.flag).pipe(
      Flag.withDescription(`${field.description}${fallback}; env ${field.env}`),
      Flag.optional
    )
  }
  return flags as { readonly [K in Keys]: Flag.Flag<Option.Option<string>> }
}

export const configFlags = makeFlags()

/**
 * Decodes the node configuration from parsed flags over the process
 * environment. Commands that take only some of the config flags pass those.
 */
export const decodeConfig = Effect.fnUntraced(function*(parsed: { readonly [K in Keys]?: Option.Option<string> }) {
  const overrides: Record<string, string | undefined> = {}
  for (const key of Object.keys(configFlags) as Array<Keys>) overrides[key] = Option.getOrUndefined(parsed[key] ?? Option.none())
  const globalLevel = yield* GlobalFlag.LogLevel
  if (Option.isSome(globalLevel)) overrides.logLevel = globalLevel.value === "All" ? "trace" : globalLevel.value.toLowerCase()
  return yield* NodeConfig.fromEnv(process.env, overrides)
})
