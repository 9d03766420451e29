/**
 * Handlers of the `auth`, `tokens` and `users` groups. Login
 * answers the same error for an unknown user and a wrong password; refresh
 * tokens rotate on every use. Token and user changes are audited and end
 * setup mode (`Authenticator.credentialsChanged`).
 */
import { Effect, Option } from "effect"
import { HttpEffect, HttpServerResponse } from "effect/http"
import { HttpApiBuilder } from "effect/http-api"
import * as AccessTokens from "../../runtime/auth/AccessTokens.ts"
import { Authenticator } from "../../runtime/auth/Authenticator.ts"
import { type ApiTokenRecord, CredentialStore, type UserRecord } from "../../runtime/auth/CredentialStore.ts"
import * as Passwords from "../../runtime/auth/Passwords.ts"
import { CurrentPrincipal } from "../../runtime/auth/Principal.ts"
import { SigningSecret } from "../../runtime/auth/SigningSecret.ts"
import { AuditLog } from "../../runtime/audit/AuditLog.ts"
import { ConflictError, InvalidCredentialsError, loginAttemptsPerMinute, TokenNotFoundError } from "./AuthApi.ts"
import { RateLimitedError } from "./RestAuth.ts"
import { RateLimiter } from "../../runtime/auth/RateLimiter.ts"
import { AgencyNotFoundError, failWith, InternalError, RequestId } from "./CamerasApi.ts"
import type { Api } from "./RestApi.ts"

const internal = (error: { readonly message: string }) =>
  Effect.gen(function*() {
    const requestId = yield* RequestId
    yield* Effect.logError("auth request failed", error.message)
    return yield* failWith(InternalError, `internal error (request ${requestId})`)
  })

const tokenView = (token: ApiTokenRecord) => ({
  id: token.id,
  name: token.name,
  role: token.role,
  agencyId: token.agencyId,
  cameraIds: token.cameraIds === null ? null : [...token.cameraIds],
  rateLimitPerMinute: token.rateLimitPerMinute,
  expiresAt: token.expiresAt === null ? null : token.expiresAt.toISOString(),
  createdAt: token.createdAt.toISOString(),
  revokedAt: token.revokedAt === null ? null : token.revokedAt.toISOString()
})

const invalidCredentials = () => failWith(InvalidCredentialsError, "username or password is wrong")

/** A password check for users that do not exist, so both answers take as long. */
const decoyHash = Passwords.hash("decoy password that never matches")

export const authLayer = (api: typeof Api) =>
  HttpApiBuilder.group(
    api,
    "auth",
    Effect.fn(function*(handlers) {
      const store = yield* CredentialStore
      const secret = yield* SigningSecret
      const limiter = yield* RateLimiter
      const decoy = yield* decoyHash

      const session = (user: UserRecord, familyId?: string, refreshToken?: string) =>
        Effect.gen(function*() {
          const accessToken = yield* AccessTokens.sign(secret, user)
          const refresh = refreshToken ?? (yield* store.issueRefreshToken(user.id, familyId))
          return { accessToken, tokenType: "Bearer" as const, expiresIn: AccessTokens.accessTokenSeconds, refreshToken: refresh }
        })

      return handlers.handleAll({
        login: Effect.fn("AuthApi.login")(function*({ payload }) {
          const attempt = yield* limiter.take(`login:${payload.username}`, loginAttemptsPerMinute)
          if (!attempt.allowed) {
            yield* HttpEffect.appendPreResponseHandler((_request, response) =>
              Effect.succeed(HttpServerResponse.setHeader(response, "retry-after", String(attempt.retryAfterSeconds)))
            )
            return yield* failWith(RateLimitedError, `too many login attempts for '${payload.username}'; retry in ${attempt.retryAfterSeconds} s`)
          }
          const user = yield* store.userByName(payload.username).pipe(Effect.catchTag("CredentialStoreError", internal))
          const ok = yield* Passwords.verify(payload.password, Option.isSome(user) ? user.value.passwordHash : decoy)
          if (Option.isNone(user) || !ok || user.value.disabled) return yield* invalidCredentials()
          return yield* session(user.value).pipe(Effect.catchTag("CredentialStoreError", internal))
        }),

        refresh: Effect.fn("AuthApi.refresh")(function*({ payload }) {
          const rotated = yield* store.rotateRefreshToken(payload.refreshToken).pipe(
            Effect.catchTags({
              CredentialStoreError: internal,
              RefreshTokenInvalid: (error) => failWith(InvalidCredentialsError, error.message)
            })
          )
          const user = yield* store.userById(rotated.userId).pipe(Effect.catchTag("CredentialStoreError", internal))
          if (Option.isNone(user) || user.value.disabled) return yield* invalidCredentials()
          return yield* session(user.value, undefined, rotated.token).pipe(Effect.catchTag("CredentialStoreError", internal))
        })
      })
    })
  )

export const tokensLayer = (api: typeof Api) =>
  HttpApiBuilder.group(
    api,
    "tokens",
    Effect.fn(function*(handlers) {
      const store = yield* CredentialStore
      const authenticator = yield* Authenticator
      const audit = yield* AuditLog
      return handlers.handleAll({
        create: Effect.fn("TokensApi.create")(function*({ payload }) {
          const principal = yield* CurrentPrincipal
          const requestId = yield* RequestId
          const created = yield* store.createApiToken({
            name: payload.name,
            role: payload.role,
            agencyId: payload.agencyId,
            cameraIds: payload.cameraIds,
            expiresAt: payload.expiresAt === undefined ? undefined : new Date(payload.expiresAt),
            rateLimitPerMinute: payload.rateLimitPerMinute,
            createdBy: `${principal.kind}:${principal.subject}`
          }).pipe(
            Effect.catchTags({
              CredentialStoreError: internal,
              AgencyNotFound: (error) =>
                failWith(AgencyNotFoundError, `agencyId: agency '${error.agencyId}' does not exist`, { field: "agencyId" })
            })
          )
          yield* authenticator.credentialsChanged
          yield* audit.record(principal, {
            action: "token.create",
            targetType: "token",
            targetId: created.record.id,
            details: { name: payload.name, role: payload.role, agencyId: payload.agencyId },
            requestId
          })
          return { ...tokenView(created.record), token: created.token }
        }),

        list: Effect.fn("TokensApi.list")(function*() {
          const tokens = yield* store.listApiTokens(undefined).pipe(Effect.catchTag("CredentialStoreError", internal))
          return { items: tokens.map(tokenView) }
        }),

        revoke: Effect.fn("TokensApi.revoke")(function*({ params }) {
          const principal = yield* CurrentPrincipal
          const requestId = yield* RequestId
          const revoked = yield* store.revokeApiToken(params.id).pipe(Effect.catchTag("CredentialStoreError", internal))
          if (!revoked) return yield* failWith(TokenNotFoundError, `token '${params.id}' does not exist or is revoked`)
          yield* authenticator.credentialsChanged
          yield* audit.record(principal, { action: "token.revoke", targetType: "token", targetId: params.id, requestId })
        })
      })
    })
  )

export const usersLayer = (api: typeof Api) =>
  HttpApiBuilder.group(
    api,
    "users",
    Effect.fn(function*(handlers) {
      const store = yield* CredentialStore
      const authenticator = yield* Authenticator
      const audit = yield* AuditLog
      return handlers.handleAll({
        create: Effect.fn("UsersApi.create")(function*({ payload }) {
          const principal = yield* CurrentPrincipal
          const requestId = yield* RequestId
          const user = yield* store.createUser(payload).pipe(
            Effect.catchTags({
              CredentialStoreError: internal,
              UsernameTaken: (error) => failWith(ConflictError, `username: '${error.username}' is taken`),
              AgencyNotFound: (error) =>
                failWith(AgencyNotFoundError, `agencyId: agency '${error.agencyId}' does not exist`, { field: "agencyId" })
            })
          )
          yield* authenticator.credentialsChanged
          yield* audit.record(principal, {
            action: "user.create",
            targetType: "user",
            targetId: user.id,
            details: { username: user.username, role: user.role, agencyId: user.agencyId },
            requestId
          })
          return { id: user.id, username: user.username, role: user.role, agencyId: user.agencyId }
        })
      })
    })
  )
