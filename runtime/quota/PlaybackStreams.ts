/**
 * Recorded media counts against an agency's `maxPlaybackStreams`, apart from
 * live: a playback playlist opens a playback stream (a quota reservation
 * that its segment fetches renew, or take again after a pause), and an
 * export holds one while it is made. The recorded-media guard admits the
 * stream and hands it to the playback routes as `PlaybackStream`.
 */
import { Context } from "effect"

/** A playback stream lapses this long after its last playlist or segment fetch. */
export const playbackTtlMs = 60_000

/** An export holds its slot at most this long (it is released when the export is made). */
export const exportTtlMs = 10 * 60_000

/** The playback stream the current request counts as (provided by the guard to the playlist route). */
export class PlaybackStream extends Context.Service<PlaybackStream, {
  readonly id: string
  readonly agencyId: string
}>()("vms/runtime/quota/PlaybackStream") {}

/** What a segment URL's token signs besides its path: the stream it renews. */
export const streamSuffix = (stream: { readonly id: string; readonly agencyId: string }) =>
  `ps=${encodeURIComponent(stream.id)}&pa=${encodeURIComponent(stream.agencyId)}`
