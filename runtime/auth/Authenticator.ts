/**
 * Turns a request's credentials into a `Principal`: `Authorization: Bearer`
 * with an access token (JWT) or an API key, or `X-API-Key` with an API key
 * or `VMS_BOOTSTRAP_TOKEN`. API keys are looked up by hash and the answer
 * cached for a few seconds, by the key as presented (no hashing per call;
 * never past a token's expiry; revocation on this node takes effect at once).
 *
 * Setup mode: while the node has no credentials at all (no bootstrap token,
 * no user, no live API token), a caller from loopback without credentials is
 * an admin, so a fresh `npm start` is useful with plain curl. The first
 * credential created ends it. Callers from elsewhere always need credentials.
 */
import { Context, Effect, Layer, Option, Redacted, Schema } from "effect"
import { hash, timingSafeEqual } from "node:crypto"
import { NodeConfig } from "../config/NodeConfig.ts"
import * as AccessTokens from "./AccessTokens.ts"
import { CredentialStore, tokenPrincipal } from "./CredentialStore.ts"
import { bootstrapPrincipal, type Principal, setupPrincipal } from "./Principal.ts"
import { SigningSecret } from "./SigningSecret.ts"

export const authFailureReasons = ["missing", "invalid", "expired", "malformed"] as const

export class AuthFailure extends Schema.TaggedError<AuthFailure>()("AuthFailure", {
  reason: Schema.Literals(authFailureReasons),
  message: Schema.String
}) {}

/** What the transports hand over: header lookup and whether the peer is on loopback. */
export interface CallerCredentials {
  readonly header: (name: "authorization" | "x-api-key") => string | undefined
  readonly loopback: boolean
}

const apiKeyCacheMs = 5_000
const setupRecheckMs = 1_000

const loopbackAddresses = new Set(["127.0.0.1", "::1", "::ffff:127.0.0.1"])

/** Whether a socket's remote address is loopback (a proxied request is not). */
export const isLoopback = (remoteAddress: string | undefined, forwardedFor: string | undefined) =>
  forwardedFor === undefined && remoteAddress !== undefined && loopbackAddresses.has(remoteAddress)

const digest = (text: string) => hash("sha256", text, "buffer")

export class Authenticator extends Context.Service<Authenticator, {
  readonly authenticate: (credentials: CallerCredentials) => Effect.Effect<Principal, AuthFailure>
  /** Whether the node is in setup mode now. */
  readonly setupMode: Effect.Effect<boolean>
  /** Credentials were created or revoked here: forget cached answers. */
  readonly credentialsChanged: Effect.Effect<void>
  /** Called with each failure's reason (for `vms_auth_failures_total`). */
  readonly onFailure: (listener: (reason: AuthFailure["reason"]) => void) => void
}>()("vms/auth/Authenticator") {
  static readonly layer: Layer.Layer<Authenticator, never, NodeConfig | CredentialStore | SigningSecret> = Layer.effect(
    Authenticator,
    Effect.gen(function*() {
      const config = yield* NodeConfig
      const store = yield* CredentialStore
      const secret = yield* SigningSecret
      const bootstrap = Option.map(config.bootstrapToken, (token) => digest(Redacted.value(token)))
      const apiKeys = new Map<string, { readonly principal: Principal | undefined; readonly until: number }>()
      let configured = Option.isSome(bootstrap)
      let checkedAt = 0
      const listeners: Array<(reason: AuthFailure["reason"]) => void> = []

      const fail = (reason: AuthFailure["reason"], message: string) =>
        Effect.suspend(() => {
          for (const listener of listeners) listener(reason)
          return Effect.fail(new AuthFailure({ reason, message }))
        })

      const setupMode = Effect.suspend(() => {
        if (configured) return Effect.succeed(false)
        if (Date.now() - checkedAt < setupRecheckMs) return Effect.succeed(true)
        return store.hasCredentials.pipe(
          Effect.map((any) => {
            checkedAt = Date.now()
            configured = any
            return !any
          }),
          // Fail closed: a node that cannot tell is not in setup mode.
          Effect.catch((error) => Effect.logWarning("credential check failed", error.message).pipe(Effect.as(false)))
        )
      })

      const isBootstrap = (key: string) =>
        Option.isSome(bootstrap) && timingSafeEqual(digest(key), bootstrap.value)

      const byApiKey = (key: string): Effect.Effect<Principal, AuthFailure> => {
        if (isBootstrap(key)) return Effect.succeed(bootstrapPrincipal)
        const cached = apiKeys.get(key)
        const now = Date.now()
        if (cached !== undefined && cached.until > now) {
          return cached.principal === undefined ? fail("invalid", "API key is not valid") : Effect.succeed(cached.principal)
        }
        return store.apiTokenBySecret(key).pipe(
          Effect.catch((error) =>
            Effect.logError("API key lookup failed", error.message).pipe(Effect.as(Option.none()))
          ),
          Effect.flatMap((token) => {
            const principal = Option.isSome(token) ? tokenPrincipal(token.value) : undefined
            // A token expiring soon is not cached past its expiry.
            const expiresAt = Option.isSome(token) && token.value.expiresAt !== null
              ? token.value.expiresAt.getTime()
              : Infinity
            apiKeys.set(key, { principal, until: Math.min(now + apiKeyCacheMs, expiresAt) })
            if (apiKeys.size > 10_000) apiKeys.delete(apiKeys.keys().next().value!)
            return principal === undefined ? fail("invalid", "API key is not valid") : Effect.succeed(principal)
          })
        )
      }

      const authenticate = (credentials: CallerCredentials): Effect.Effect<Principal, AuthFailure> => {
        const apiKey = credentials.header("x-api-key")
        if (apiKey !== undefined && apiKey !== "") return byApiKey(apiKey)
        const authorization = credentials.header("authorization")
        if (authorization !== undefined && authorization !== "") {
          const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization)
          if (match === null) return fail("malformed", "Authorization must be 'Bearer <token>'")
          const token = match[1]!
          if (token.split(".").length === 3) {
            return AccessTokens.verify(secret, token).pipe(
              Effect.catchTag("AccessTokenInvalid", (error) => fail(error.reason, error.message))
            )
          }
          return byApiKey(token)
        }
        if (!credentials.loopback) return fail("missing", "credentials required (Authorization or X-API-Key)")
        return Effect.flatMap(setupMode, (setup) =>
          setup
            ? Effect.succeed(setupPrincipal)
            : fail("missing", "credentials required (Authorization or X-API-Key)"))
      }

      if (yield* setupMode) {
        yield* Effect.logWarning(
          "setup mode: no credentials are configured, so requests from loopback are treated as admin; " +
            "create a user or an API token (or set VMS_BOOTSTRAP_TOKEN) to require authentication"
        )
      }

      return Authenticator.of({
        authenticate,
        setupMode,
        credentialsChanged: Effect.sync(() => {
          apiKeys.clear()
          checkedAt = 0
        }),
        onFailure: (listener) => void listeners.push(listener)
      })
    })
  )
}
