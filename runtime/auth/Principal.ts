/**
 * Who is calling and what they may do: roles, the permission matrix (the
 * README's table is this one), and agency scoping. Every principal belongs
 * to an agency and sees only that agency's cameras, narrowed further by an
 * API token's camera scope; admins see every agency. Pure: authentication
 * (how a request becomes a principal) lives in `Authenticator.ts`.
 */
import { Context, Effect, Schema } from "effect"

export const roles = ["admin", "operator", "viewer", "api_only"] as const
export const Role = Schema.Literals(roles)
export type Role = typeof Role.Type

export const permissionNames = [
  "camera:read",
  "camera:write",
  "recording:read",
  "recording:write",
  "events:read",
  "media:live",
  "media:playback",
  "media:export",
  "token:manage",
  "agency:manage",
  "audit:read"
] as const
export type Permission = typeof permissionNames[number]

/** The permission matrix. Agency scoping applies on top of it for every role but admin. */
export const permissions: Readonly<Record<Role, ReadonlySet<Permission>>> = {
  admin: new Set(permissionNames),
  operator: new Set<Permission>([
    "camera:read",
    "camera:write",
    "recording:read",
    "recording:write",
    "events:read",
    "media:live",
    "media:playback",
    "media:export"
  ]),
  viewer: new Set<Permission>(["camera:read", "recording:read", "events:read", "media:live", "media:playback"]),
  api_only: new Set<Permission>(["camera:read", "recording:read", "events:read"])
}

export class Principal extends Schema.Class<Principal>("Principal")({
  /** How the caller proved who it is. `setup`: an unconfigured node's loopback caller. */
  kind: Schema.Literals(["user", "token", "bootstrap", "setup"]),
  /** The user's or token's id (`bootstrap`/`setup` for those). */
  subject: Schema.String,
  role: Role,
  agencyId: Schema.String,
  /** An API token's camera scope; null when the principal is not narrowed to cameras. */
  cameraIds: Schema.NullOr(Schema.Array(Schema.String)),
  /** Calls per minute; null uses the node's default. */
  rateLimitPerMinute: Schema.NullOr(Schema.Number)
}) {}

/** The principal of the request being served (provided by the REST and RPC authentication middlewares). */
export class CurrentPrincipal extends Context.Service<CurrentPrincipal, Principal>()("vms/auth/CurrentPrincipal") {}

export const can = (principal: Principal, permission: Permission): boolean =>
  permissions[principal.role].has(permission)

/** Whether the principal may see this camera at all (agency and token scope). */
export const canSeeCamera = (principal: Principal, camera: { readonly id: string; readonly agencyId: string }): boolean =>
  (principal.role === "admin" || camera.agencyId === principal.agencyId) &&
  (principal.cameraIds === null || principal.cameraIds.includes(camera.id))

/**
 * The agency a list is restricted to: admins may ask for any (or all, undefined);
 * others always get their own, and asking for another agency gets nothing (null).
 */
export const agencyFilter = (principal: Principal, requested: string | undefined): string | undefined | null => {
  if (principal.role === "admin") return requested
  if (requested !== undefined && requested !== principal.agencyId) return null
  return principal.agencyId
}

/** Where a new camera goes: non-admins can only add to their own agency (the default is theirs too). */
export const agencyForWrite = (principal: Principal, requested: string, defaulted: boolean): string | undefined => {
  if (principal.role === "admin") return requested
  if (defaulted || requested === principal.agencyId) return principal.agencyId
  return undefined
}

/** The principal an unconfigured node gives loopback callers (see the README's "setup mode"). */
export const setupPrincipal = new Principal({
  kind: "setup",
  subject: "setup",
  role: "admin",
  agencyId: "default",
  cameraIds: null,
  rateLimitPerMinute: null
})

export const bootstrapPrincipal = new Principal({
  kind: "bootstrap",
  subject: "bootstrap",
  role: "admin",
  agencyId: "default",
  cameraIds: null,
  rateLimitPerMinute: null
})

/** The current principal if it holds `permission`; `onForbidden` otherwise. */
export const requirePermission = <E>(
  permission: Permission,
  onForbidden: (message: string) => E
): Effect.Effect<Principal, E, CurrentPrincipal> =>
  // Combinators, not a generator: every RPC and REST call runs this.
  Effect.flatMap(Effect.service(CurrentPrincipal), (principal) =>
    can(principal, permission)
      ? Effect.succeed(principal)
      : Effect.fail(onForbidden(`role '${principal.role}' may not ${permission.replace(":", " ")}`)))
