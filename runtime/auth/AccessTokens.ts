/**
 * Short-lived access tokens: JWTs signed with HS256 (`jose`) by the node's
 * `SigningSecret`. Verification accepts HS256 only (so `alg: none` and any
 * other algorithm are refused) and checks `exp`, `nbf`, `iss` and `aud`.
 * The claims carry what authorization needs without a database read.
 */
import { Effect, Schema } from "effect"
import { errors, jwtVerify, SignJWT } from "jose"
import { Principal, Role } from "./Principal.ts"

export const issuer = "vms"
export const audience = "vms-api"
export const accessTokenSeconds = 15 * 60

const Claims = Schema.Struct({
  sub: Schema.String,
  role: Role,
  agency: Schema.String
})

export class AccessTokenInvalid extends Schema.TaggedError<AccessTokenInvalid>()("AccessTokenInvalid", {
  reason: Schema.Literals(["expired", "invalid"]),
  message: Schema.String
}) {}

export const sign = (secret: Uint8Array, user: { readonly id: string; readonly role: Role; readonly agencyId: string }, nowSeconds = Math.floor(Date.now() / 1000)) =>
  Effect.promise(() =>
    new SignJWT({ role: user.role, agency: user.agencyId })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setSubject(user.id)
      .setIssuer(issuer)
      .setAudience(audience)
      .setIssuedAt(nowSeconds)
      .setNotBefore(nowSeconds)
      .setExpirationTime(nowSeconds + accessTokenSeconds)
      .sign(secret)
  )

const decodeClaims = Schema.decodeUnknownOption(Claims)

export const verify = (secret: Uint8Array, token: string) =>
  Effect.tryPromise({
    try: () => jwtVerify(token, secret, { algorithms: ["HS256"], issuer, audience, clockTolerance: 5 }),
    catch: (error) =>
      error instanceof errors.JWTExpired
        ? new AccessTokenInvalid({ reason: "expired", message: "access token expired" })
        : new AccessTokenInvalid({ reason: "invalid", message: "access token is not valid" })
  }).pipe(
    Effect.flatMap(({ payload }) => {
      const claims = decodeClaims(payload)
      return claims._tag === "None"
        ? Effect.fail(new AccessTokenInvalid({ reason: "invalid", message: "access token claims are not valid" }))
        : Effect.succeed(
          new Principal({
            kind: "user",
            subject: claims.value.sub,
            role: claims.value.role,
            agencyId: claims.value.agency,
            cameraIds: null,
            rateLimitPerMinute: null
          })
        )
    })
  )
