/**
 * Errors of the RTSP camera simulator's public surface.
 */
import { Schema } from "effect"

/** The simulator could not start: bad options, or a port could not be bound. */
export class SimulatorError extends Schema.TaggedError<SimulatorError>()("SimulatorError", {
  reason: Schema.String
}) {}

/** A fault was addressed to a mount that does not exist. */
export class MountNotFound extends Schema.TaggedError<MountNotFound>()("MountNotFound", {
  mount: Schema.String
}) {}
