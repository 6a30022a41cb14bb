import type { ErrorCode } from '../../protocol/frames.js'
import { formatId, isChannelName, parseCursor, parseId, parseRewind } from '../../protocol/position.js'
import type { CursorEntry, Position } from '../../protocol/position.js'
import { quoteForMessage } from '../hub/out-frame.js'
import type { ChannelPosition } from '../hub/out-frame.js'

// Stream cursors for the transports that carry one stream per request and
// name their subscriptions in it (SSE, long and short polling, the iframe
// stream): parse the request's cursor with the error code protocol.md 3.3
// asks for, apply Last-Event-ID (SSE), and track the cursor as frames go out.

export type CursorParse =
  | { ok: true; entries: CursorEntry[] }
  | { ok: false; code: Extract<ErrorCode, 'BAD_FRAME' | 'INVALID_CHANNEL' | 'TOO_MANY_SUBSCRIPTIONS'>; message: string }

/** Parses a request's stream cursor, classifying what is wrong with it. */
export function parseRequestCursor(cursor: string, maxEntries: number): CursorParse {
  if (cursor === '') return { ok: true, entries: [] }
  const parts = cursor.split(',')
  if (parts.length > maxEntries) {
    return { ok: false, code: 'TOO_MANY_SUBSCRIPTIONS', message: `more than ${maxEntries} cursor entries` }
  }
  const seen = new Set<string>()
  const entries: CursorEntry[] = []
  for (const part of parts) {
    const split = part.search(/[=~]/)
    const channel = split === -1 ? part : part.slice(0, split)
    if (!isChannelName(channel)) {
      return { ok: false, code: 'INVALID_CHANNEL', message: `invalid channel in cursor: ${quoteForMessage(channel)}` }
    }
    if (seen.has(channel)) return { ok: false, code: 'BAD_FRAME', message: `channel ${channel} repeats in cursor` }
    seen.add(channel)
    if (split === -1) {
      entries.push({ channel })
      continue
    }
    if (part[split] === '~') {
      const rewind = parseRewind(part.slice(split + 1))
      if (rewind === undefined) return { ok: false, code: 'BAD_FRAME', message: `invalid rewind for ${channel} in cursor: expected ~ and 1 to 10 digits` }
      entries.push({ channel, rewind })
      continue
    }
    const position = parseId(part.slice(split + 1))
    if (!position) return { ok: false, code: 'BAD_FRAME', message: `invalid position for ${channel} in cursor` }
    entries.push({ channel, position })
  }
  return { ok: true, entries }
}

/**
 * protocol.md 3.3: a valid Last-Event-ID cursor overrides the positions of
 * the channels the request names; channels only in the header are ignored.
 * This is what makes a plain EventSource's own reconnect resume correctly:
 * it repeats the original URL, with the last `id:` it saw in the header.
 */
export function applyLastEventId(entries: CursorEntry[], lastEventId: string | undefined): CursorEntry[] {
  if (!lastEventId || entries.length === 0) return entries
  const header = parseCursor(lastEventId, Number.MAX_SAFE_INTEGER)
  if (!header) return entries
  const positions = new Map<string, Position>()
  for (const entry of header) if (entry.position) positions.set(entry.channel, entry.position)
  return entries.map((entry) => {
    const position = positions.get(entry.channel)
    return position ? { channel: entry.channel, position } : entry
  })
}

/** Streams of up to this many channels find a channel by scanning its list. */
const SCANNED_CHANNELS_MAX = 8

/**
 * The stream cursor of one stream as its frames go out: every channel of the
 * request, in request order, with the position after the last frame written.
 */
export class CursorTracker {
  /** The request's channels, in order. */
  readonly #channels: readonly string[]
  /** Each channel's cursor entry text (`channel` or `channel=epoch-offset`), at the channel's index. */
  readonly #parts: string[]
  /**
   * Index by channel for a stream of many channels; undefined for a few, where a scan costs less
   * than a Map (about 250 bytes that every idle stream would hold).
   */
  readonly #indexes: Map<string, number> | undefined
  #text: string | undefined

  constructor(entries: readonly CursorEntry[]) {
    // map makes arrays of exactly the entries' length.
    this.#channels = entries.map(({ channel }) => channel)
    this.#parts = entries.map(({ channel, position }) =>
      position ? `${channel}=${formatId(position.epoch, position.offset)}` : channel,
    )
    this.#indexes = entries.length > SCANNED_CHANNELS_MAX ? new Map(this.#channels.map((channel, i) => [channel, i])) : undefined
  }

  get size(): number {
    return this.#parts.length
  }

  /** A frame of `position.channel` went out (always one of the request's channels: the stream subscribes to no other). */
  advance(position: ChannelPosition): void {
    const index = this.#indexes ? this.#indexes.get(position.channel) : this.#channels.indexOf(position.channel)
    if (index === undefined || index < 0) return
    this.#parts[index] = `${position.channel}=${formatId(position.epoch, position.offset)}`
    this.#text = undefined
  }

  /** The cursor, rebuilt only after a change. */
  format(): string {
    if (this.#text === undefined) {
      let text = ''
      for (const part of this.#parts) text = text === '' ? part : `${text},${part}`
      this.#text = text
    }
    return this.#text
  }
}
