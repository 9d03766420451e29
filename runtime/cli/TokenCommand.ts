/**
 * `vms token create`: creates an API token in the node's database (the same
 * database settings as `vms start`) and prints `{ "id", "token", … }` as
 * JSON; the token is shown this once and stored only hashed. Arguments are
 * decoded with the REST API's `TokenCreate` schema, so errors name the field.
 */
import { Effect, Layer, Option, Schema, SchemaIssue } from "effect"
import { Command, Flag } from "effect/cli"
import { TokenCreate } from "../../rpc/rest/AuthApi.ts"
import { AuditLog } from "../audit/AuditLog.ts"
import * as CredentialStore from "../auth/CredentialStore.ts"
import { Principal, roles } from "../auth/Principal.ts"
import { DataDir } from "../config/DataDir.ts"
import { ConfigInvalid, NodeConfig } from "../config/NodeConfig.ts"
import * as Database from "../database/Database.ts"
import { Readiness } from "../health/Readiness.ts"
import * as Logging from "../logging/Logging.ts"
import { configFlags, decodeConfig } from "./ConfigFlags.ts"

const cli = new Principal({
  kind: "bootstrap",
  subject: "cli",
  role: "admin",
  agencyId: "default",
  cameraIds: null,
  rateLimitPerMinute: null
})

const createCommand = Command.make(
  "create",
  {
    ...configFlags,
    name: Flag.String("name").pipe(Flag.withDescription("what the token is for, e.g. 'wall display'")),
    role: Flag.Literals("role", roles).pipe(Flag.withDescription("admin, operator, viewer or api_only")),
    agencyId: Flag.String("agency-id").pipe(Flag.withDescription("the agency the token belongs to (default 'default')"), Flag.withDefault("default")),
    cameraIds: Flag.String("camera-ids").pipe(Flag.withDescription("comma-separated cameras the token is limited to"), Flag.optional),
    expiresAt: Flag.String("expires-at").pipe(Flag.withDescription("ISO-8601 expiry, e.g. 2027-01-01T00:00:00Z"), Flag.optional),
    rateLimit: Flag.Int("rate-limit").pipe(Flag.withDescription("requests per minute (default 6000)"), Flag.optional)
  },
  (flags) =>
    Effect.gen(function*() {
      const config = yield* decodeConfig(flags)
      const request = yield* Schema.decodeUnknownEffect(TokenCreate)({
        name: flags.name,
        role: flags.role,
        agencyId: flags.agencyId,
        ...Option.match(flags.cameraIds, {
          onNone: () => ({}),
          onSome: (ids) => ({ cameraIds: ids.split(",").map((id) => id.trim()).filter((id) => id !== "") })
        }),
        ...Option.match(flags.expiresAt, { onNone: () => ({}), onSome: (expiresAt) => ({ expiresAt }) }),
        ...Option.match(flags.rateLimit, { onNone: () => ({}), onSome: (rateLimitPerMinute) => ({ rateLimitPerMinute }) })
      }, { errors: "all" }).pipe(
        Effect.mapError((error) => {
          const issue = SchemaIssue.makeFormatterStandardSchemaV1()(error.issue).issues[0]
          const field = issue?.path?.map(String).join(".") ?? "arguments"
          return new ConfigInvalid({ variable: field, flag: field, problem: issue?.message ?? error.message })
        })
      )
      const created = yield* Effect.gen(function*() {
        const store = yield* CredentialStore.CredentialStore
        const audit = yield* AuditLog
        const created = yield* store.createApiToken({
          ...request,
          expiresAt: request.expiresAt === undefined ? undefined : new Date(request.expiresAt),
          createdBy: "cli"
        })
        yield* audit.record(cli, {
          action: "token.create",
          targetType: "token",
          targetId: created.record.id,
          details: { name: request.name, role: request.role, agencyId: request.agencyId, via: "cli" }
        })
        return created
      }).pipe(
        Effect.provide(
          Layer.mergeAll(CredentialStore.layer, AuditLog.layer).pipe(
            Layer.provideMerge(Database.layer),
            Layer.provide(DataDir.layer),
            Layer.provide([Layer.succeed(NodeConfig, config), Readiness.layer])
          )
        ),
        Effect.provide(Logging.layer(config.logLevel))
      )
      yield* Effect.sync(() =>
        process.stdout.write(`${JSON.stringify({ id: created.record.id, token: created.token, name: created.record.name, role: created.record.role, agencyId: created.record.agencyId }, null, 2)}\n`)
      )
    })
).pipe(Command.withDescription("Create an API token and print it once (stored hashed)"))

export const tokenCommand = Command.make("token").pipe(
  Command.withDescription("Manage API tokens"),
  Command.withSubcommands([createCommand])
)
