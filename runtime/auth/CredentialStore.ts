/**
 * Users, API tokens and refresh tokens in Postgres (`users`, `api_tokens`,
 * `refresh_tokens`). Secrets are stored only as hashes: passwords with
 * scrypt (`Passwords.ts`), random tokens with SHA-256 (they carry 256 bits,
 * so a slow hash adds nothing). A token is shown once, when created.
 */
import { Context, Effect, Layer, Option, Predicate, Schema } from "effect"
import { SqlClient, type SqlError } from "effect/sql"
import { hash, randomBytes, randomUUID } from "node:crypto"
import { AgencyNotFound } from "../cameras/CameraStore.ts"
import * as Passwords from "./Passwords.ts"
import { Principal, type Role } from "./Principal.ts"

export class CredentialStoreError extends Schema.TaggedError<CredentialStoreError>()("CredentialStoreError", {
  message: Schema.String
}) {}

export class UsernameTaken extends Schema.TaggedError<UsernameTaken>()("UsernameTaken", {
  username: Schema.String
}) {}

export class RefreshTokenInvalid extends Schema.TaggedError<RefreshTokenInvalid>()("RefreshTokenInvalid", {
  reason: Schema.Literals(["unknown", "expired", "reused"]),
  message: Schema.String
}) {}

export interface UserRecord {
  readonly id: string
  readonly username: string
  readonly role: Role
  readonly agencyId: string
  readonly disabled: boolean
  readonly passwordHash: string
}

export interface ApiTokenRecord {
  readonly id: string
  readonly name: string
  readonly role: Role
  readonly agencyId: string
  readonly cameraIds: ReadonlyArray<string> | null
  readonly rateLimitPerMinute: number | null
  readonly expiresAt: Date | null
  readonly createdAt: Date
  readonly revokedAt: Date | null
}

export interface NewApiToken {
  readonly name: string
  readonly role: Role
  readonly agencyId: string
  readonly cameraIds?: ReadonlyArray<string> | undefined
  readonly expiresAt?: Date | undefined
  readonly rateLimitPerMinute?: number | undefined
  readonly createdBy: string
}

/** Refresh tokens live this long; each use replaces the token. */
export const refreshTokenDays = 30

/** SHA-256, base64url; one-shot `crypto.hash` (a quarter of `createHash`'s cost: it runs on every API-key call). */
export const hashToken = (token: string) => hash("sha256", token, "base64url")

const newSecret = (prefix: string) => `${prefix}_${randomBytes(32).toString("base64url")}`

export const tokenPrincipal = (token: ApiTokenRecord) =>
  new Principal({
    kind: "token",
    subject: token.id,
    role: token.role,
    agencyId: token.agencyId,
    cameraIds: token.cameraIds === null ? null : [...token.cameraIds],
    rateLimitPerMinute: token.rateLimitPerMinute
  })

export class CredentialStore extends Context.Service<CredentialStore, {
  /** Whether any user or live API token exists (a node without any is in setup mode). */
  readonly hasCredentials: Effect.Effect<boolean, CredentialStoreError>
  readonly createUser: (user: {
    readonly username: string
    readonly password: string
    readonly role: Role
    readonly agencyId: string
  }) => Effect.Effect<UserRecord, UsernameTaken | AgencyNotFound | CredentialStoreError>
  readonly userByName: (username: string) => Effect.Effect<Option.Option<UserRecord>, CredentialStoreError>
  readonly userById: (id: string) => Effect.Effect<Option.Option<UserRecord>, CredentialStoreError>
  readonly createApiToken: (
    token: NewApiToken
  ) => Effect.Effect<{ readonly record: ApiTokenRecord; readonly token: string }, AgencyNotFound | CredentialStoreError>
  /** The live (not revoked, not expired) token with this secret. */
  readonly apiTokenBySecret: (secret: string) => Effect.Effect<Option.Option<ApiTokenRecord>, CredentialStoreError>
  readonly listApiTokens: (agencyId: string | undefined) => Effect.Effect<ReadonlyArray<ApiTokenRecord>, CredentialStoreError>
  readonly apiTokenById: (id: string) => Effect.Effect<Option.Option<ApiTokenRecord>, CredentialStoreError>
  /** Answers whether a live token was revoked. */
  readonly revokeApiToken: (id: string) => Effect.Effect<boolean, CredentialStoreError>
  /** A new refresh token for the user, in a new family (login) or the given one (rotation). */
  readonly issueRefreshToken: (userId: string, familyId?: string) => Effect.Effect<string, CredentialStoreError>
  /**
   * Spends a refresh token: answers its user and a replacement. A token used
   * twice revokes its whole family (whoever holds the newer one must log in).
   */
  readonly rotateRefreshToken: (
    token: string
  ) => Effect.Effect<{ readonly userId: string; readonly token: string }, RefreshTokenInvalid | CredentialStoreError>
}>()("vms/auth/CredentialStore") {}

const failure = (operation: string) => (error: SqlError.SqlError) =>
  new CredentialStoreError({ message: `${operation}: ${error.message}` })

/** On insert a foreign-key violation can only be the agency. */
const insertFailure = (operation: string, agencyId: string) => (error: SqlError.SqlError) => {
  const cause = error.reason.cause
  return Predicate.hasProperty(cause, "code") && cause.code === "23503"
    ? new AgencyNotFound({ agencyId })
    : failure(operation)(error)
}

interface TokenRow {
  readonly id: string
  readonly name: string
  readonly role: Role
  readonly agencyId: string
  readonly cameraIds: ReadonlyArray<string> | null
  readonly rateLimitPerMinute: number | null
  readonly expiresAt: Date | null
  readonly createdAt: Date
  readonly revokedAt: Date | null
}

export const layer: Layer.Layer<CredentialStore, never, SqlClient.SqlClient> = Layer.effect(
  CredentialStore,
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const tokenColumns = sql.literal(`
      id, name, role, agency_id AS "agencyId", camera_ids AS "cameraIds",
      rate_limit_per_minute AS "rateLimitPerMinute", expires_at AS "expiresAt",
      created_at AS "createdAt", revoked_at AS "revokedAt"`)
    const userColumns = sql.literal(`
      id, username, role, agency_id AS "agencyId", disabled, password_hash AS "passwordHash"`)

    const firstUser = (rows: ReadonlyArray<UserRecord>) => Option.fromNullishOr(rows[0])
    const firstToken = (rows: ReadonlyArray<TokenRow>) => Option.fromNullishOr(rows[0])

    const issueRefreshToken = Effect.fn("CredentialStore.issueRefreshToken")(function*(userId: string, familyId?: string) {
      const secret = newSecret("vmsr")
      yield* sql`INSERT INTO refresh_tokens ${
        sql.insert({
          id: randomUUID(),
          user_id: userId,
          family_id: familyId ?? randomUUID(),
          token_hash: hashToken(secret),
          expires_at: new Date(Date.now() + refreshTokenDays * 86_400_000)
        })
      }`.pipe(Effect.mapError(failure("issueRefreshToken")))
      return secret
      })

    return CredentialStore.of({
      hasCredentials: sql<{ readonly any: boolean }>`
        SELECT EXISTS (SELECT 1 FROM users WHERE NOT disabled)
          OR EXISTS (SELECT 1 FROM api_tokens WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now()))
          AS any`.pipe(
        Effect.map((rows) => rows[0]?.any === true),
        Effect.mapError(failure("hasCredentials"))
      ),

      createUser: Effect.fn("CredentialStore.createUser")(function*(user) {
        const passwordHash = yield* Passwords.hash(user.password)
        const id = randomUUID()
        yield* sql`INSERT INTO users ${
          sql.insert({ id, username: user.username, password_hash: passwordHash, role: user.role, agency_id: user.agencyId })
        }`.pipe(
          Effect.mapError((error) =>
            error.reason._tag === "UniqueViolation"
              ? new UsernameTaken({ username: user.username })
              : insertFailure("createUser", user.agencyId)(error)
          )
        )
        return { id, username: user.username, role: user.role, agencyId: user.agencyId, disabled: false, passwordHash }
      }),

      userByName: (username) =>
        sql<UserRecord>`SELECT ${userColumns} FROM users WHERE username = ${username}`.pipe(
          Effect.map(firstUser),
          Effect.mapError(failure("userByName"))
        ),
      userById: (id) =>
        sql<UserRecord>`SELECT ${userColumns} FROM users WHERE id = ${id}`.pipe(
          Effect.map(firstUser),
          Effect.mapError(failure("userById"))
        ),

      createApiToken: Effect.fn("CredentialStore.createApiToken")(function*(token) {
        const id = randomUUID()
        const secret = newSecret("vms")
        const rows = yield* sql<TokenRow>`INSERT INTO api_tokens ${
          sql.insert({
            id,
            agency_id: token.agencyId,
            name: token.name,
            role: token.role,
            token_hash: hashToken(secret),
            camera_ids: token.cameraIds === undefined ? null : [...token.cameraIds],
            rate_limit_per_minute: token.rateLimitPerMinute ?? null,
            expires_at: token.expiresAt ?? null,
            created_by: token.createdBy
          } as any)
        } RETURNING ${tokenColumns}`.pipe(Effect.mapError(insertFailure("createApiToken", token.agencyId)))
        return { record: rows[0]!, token: secret }
      }),

      apiTokenBySecret: (secret) =>
        sql<TokenRow>`
          SELECT ${tokenColumns} FROM api_tokens WHERE token_hash = ${hashToken(secret)}
            AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())`.pipe(
          Effect.map(firstToken),
          Effect.mapError(failure("apiTokenBySecret"))
        ),

      listApiTokens: (agencyId) =>
        agencyId === undefined
          ? sql<TokenRow>`SELECT ${tokenColumns} FROM api_tokens ORDER BY created_at, id`.pipe(
            Effect.mapError(failure("listApiTokens"))
          )
          : sql<TokenRow>`SELECT ${tokenColumns} FROM api_tokens WHERE agency_id = ${agencyId} ORDER BY created_at, id`
            .pipe(Effect.mapError(failure("listApiTokens"))),

      apiTokenById: (id) =>
        sql<TokenRow>`SELECT ${tokenColumns} FROM api_tokens WHERE id = ${id}`.pipe(
          Effect.map(firstToken),
          Effect.mapError(failure("apiTokenById"))
        ),

      revokeApiToken: (id) =>
        sql`UPDATE api_tokens SET revoked_at = now() WHERE id = ${id} AND revoked_at IS NULL RETURNING id`.pipe(
          Effect.map((rows) => rows.length > 0),
          Effect.mapError(failure("revokeApiToken"))
        ),

      issueRefreshToken,

      rotateRefreshToken: Effect.fn("CredentialStore.rotateRefreshToken")(function*(token) {
        const rows = yield* sql<{
          readonly userId: string
          readonly familyId: string
          readonly expired: boolean
          readonly spent: boolean
        }>`
          SELECT user_id AS "userId", family_id AS "familyId", expires_at <= now() AS expired,
            (used_at IS NOT NULL OR revoked_at IS NOT NULL) AS spent
          FROM refresh_tokens WHERE token_hash = ${hashToken(token)}`.pipe(Effect.mapError(failure("rotateRefreshToken")))
        const row = rows[0]
        if (row === undefined) {
          return yield* new RefreshTokenInvalid({ reason: "unknown", message: "refresh token is not valid" })
        }
        if (row.spent) {
          yield* sql`UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = ${row.familyId} AND revoked_at IS NULL`
            .pipe(Effect.mapError(failure("rotateRefreshToken")))
          return yield* new RefreshTokenInvalid({ reason: "reused", message: "refresh token was already used; log in again" })
        }
        if (row.expired) return yield* new RefreshTokenInvalid({ reason: "expired", message: "refresh token expired" })
        // Only one of two concurrent rotations wins the row.
        const spent = yield* sql`
          UPDATE refresh_tokens SET used_at = now()
          WHERE token_hash = ${hashToken(token)} AND used_at IS NULL AND revoked_at IS NULL RETURNING id`.pipe(
          Effect.mapError(failure("rotateRefreshToken"))
        )
        if (spent.length === 0) {
          return yield* new RefreshTokenInvalid({ reason: "reused", message: "refresh token was already used; log in again" })
        }
        const next = yield* issueRefreshToken(row.userId, row.familyId)
        return { userId: row.userId, token: next }
      })
    })
  })
)
