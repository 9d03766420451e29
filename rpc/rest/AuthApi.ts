/**
 * The REST contract for credentials: `auth` (login and refresh, open to
 * anyone), and `tokens` and `users` (admins). Signed live URLs come with
 * viewer sessions (`ViewersApi.ts`). Handlers live in `AuthHandlers.ts`.
 */
import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { Role } from "../../runtime/auth/Principal.ts"
import { CameraId, isPrintable } from "../../runtime/cameras/CameraModel.ts"
import { AgencyNotFoundError, envelope } from "./CamerasApi.ts"
import { RateLimitedError } from "./RestAuth.ts"

/** Password guesses allowed per username and minute. */
export const loginAttemptsPerMinute = 10
import { ErrorReporter } from "effect"

const Name = Schema.String.check(
  Schema.isMinLength(1, { message: "must not be empty" }),
  Schema.isMaxLength(200, { message: "must be at most 200 characters" }),
  isPrintable
)

const Secret = Schema.String.check(
  Schema.isMinLength(1, { message: "must not be empty" }),
  Schema.isMaxLength(1024, { message: "must be at most 1024 characters" })
)

const Password = Schema.String.check(
  Schema.isMinLength(12, { message: "must be at least 12 characters" }),
  Schema.isMaxLength(1024, { message: "must be at most 1024 characters" })
)

const IsoInstant = Schema.String.check(
  Schema.makeFilter<string>((text) => /^\d{4}-\d{2}-\d{2}T/.test(text) && Number.isFinite(Date.parse(text)), {
    message: "must be an ISO-8601 date-time, e.g. 2027-01-01T00:00:00Z"
  })
)

export class InvalidCredentialsError extends Schema.Error<InvalidCredentialsError>("vms/rest/InvalidCredentials")(
  envelope("InvalidCredentials"),
  { httpApiStatus: 401, description: "Wrong username or password, or a refresh token that is not valid" }
) {
  static readonly code = "InvalidCredentials"
  override readonly [ErrorReporter.ignore] = true
}

export class ConflictError extends Schema.Error<ConflictError>("vms/rest/Conflict")(
  envelope("Conflict"),
  { httpApiStatus: 409, description: "The name is taken" }
) {
  static readonly code = "Conflict"
  override readonly [ErrorReporter.ignore] = true
}

export class TokenNotFoundError extends Schema.Error<TokenNotFoundError>("vms/rest/TokenNotFound")(
  envelope("TokenNotFound"),
  { httpApiStatus: 404, description: "No live API token has this id" }
) {
  static readonly code = "TokenNotFound"
  override readonly [ErrorReporter.ignore] = true
}

export const Session = Schema.Struct({
  accessToken: Schema.String,
  tokenType: Schema.Literal("Bearer"),
  /** Seconds the access token is valid. */
  expiresIn: Schema.Number,
  /** Spend it at `/auth/refresh` for a new session; it works once. */
  refreshToken: Schema.String
}).annotate({ identifier: "Session" })

export const TokenCreate = Schema.Struct({
  name: Name,
  role: Role,
  agencyId: Name,
  cameraIds: Schema.optionalKey(Schema.Array(CameraId).check(Schema.isMaxLength(1000))),
  expiresAt: Schema.optionalKey(IsoInstant),
  rateLimitPerMinute: Schema.optionalKey(
    Schema.Number.check(Schema.isInt(), Schema.isBetween({ minimum: 1, maximum: 1_000_000 }))
  )
}).annotate({ identifier: "TokenCreate" })

export const TokenView = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  role: Role,
  agencyId: Schema.String,
  cameraIds: Schema.NullOr(Schema.Array(Schema.String)),
  rateLimitPerMinute: Schema.NullOr(Schema.Number),
  expiresAt: Schema.NullOr(Schema.String),
  createdAt: Schema.String,
  revokedAt: Schema.NullOr(Schema.String)
}).annotate({ identifier: "Token" })

export const UserCreate = Schema.Struct({
  username: Name,
  password: Password,
  role: Role,
  agencyId: Name
}).annotate({ identifier: "UserCreate" })

export const UserView = Schema.Struct({
  id: Schema.String,
  username: Schema.String,
  role: Role,
  agencyId: Schema.String
}).annotate({ identifier: "User" })

export class AuthApi extends HttpApiGroup.make("auth")
  .add(
    HttpApiEndpoint.post("login", "/auth/login", {
      payload: Schema.Struct({ username: Name, password: Secret }),
      success: Session,
      error: [InvalidCredentialsError, RateLimitedError]
    }).annotate(OpenApi.Description, `At most ${loginAttemptsPerMinute} attempts a minute per username, then 429 with Retry-After`),
    HttpApiEndpoint.post("refresh", "/auth/refresh", {
      payload: Schema.Struct({ refreshToken: Secret }),
      success: Session,
      error: InvalidCredentialsError
    })
  )
  .annotate(OpenApi.Description, "Log in with a password for a short-lived access token and a rotating refresh token")
{}

export class TokensApi extends HttpApiGroup.make("tokens")
  .add(
    HttpApiEndpoint.post("create", "/tokens", {
      payload: TokenCreate,
      success: Schema.Struct({ ...TokenView.fields, token: Schema.String }).pipe(HttpApiSchema.status(201)),
      error: AgencyNotFoundError
    }).annotate(OpenApi.Description, "The token is in the answer only; it is stored hashed"),
    HttpApiEndpoint.get("list", "/tokens", {
      success: Schema.Struct({ items: Schema.Array(TokenView) })
    }),
    HttpApiEndpoint.delete("revoke", "/tokens/:id", {
      params: { id: Name },
      error: TokenNotFoundError
    })
  )
  .annotate(OpenApi.Description, "API tokens (admins)")
{}

export class UsersApi extends HttpApiGroup.make("users")
  .add(
    HttpApiEndpoint.post("create", "/users", {
      payload: UserCreate,
      success: UserView.pipe(HttpApiSchema.status(201)),
      error: [ConflictError, AgencyNotFoundError]
    })
  )
  .annotate(OpenApi.Description, "Users who log in with a password (admins)")
{}
