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

/**
 * One channel of a stream cursor: the position of the last frame of it that went out, or
 * its bare name while it has none.
 */
type CursorSlot = Readonly<ChannelPosition> | string

/**
 * The stream cursor of one stream as its frames go out: every channel of the
 * request, in request order, with the position after the last frame written.
 *
 * It keeps the frames' own position objects rather than cursor text: a frame's position is
 * made once and shared by every stream the frame goes to, so an idle stream holds no string
 * of its own (an `epoch-offset` entry cost it about 120 bytes), and the text is built only
 * when an `id:` line needs it. A stream of one channel never does (its id line is shared too).
 */
export class CursorTracker {
  /** The request's channels in request order, each as its {@link CursorSlot}. */
  readonly #slots: CursorSlot[]

  constructor(entries: readonly CursorEntry[]) {
    // map makes an array of exactly the entries' length.
    this.#slots = entries.map(({ channel, position }) =>
      position ? { channel, epoch: position.epoch, offset: position.offset } : channel,
    )
  }

  get size(): number {
    return this.#slots.length
  }

  /**
   * A frame of `position.channel` went out (always one of the request's channels: the stream
   * subscribes to no other). `position` is kept, not copied: frames' positions never change.
   * A scan, not an index: a stream of many channels formats its whole cursor after every
   * advance anyway, which costs more than the scan.
   */
  advance(position: Readonly<ChannelPosition>): void {
    const slots = this.#slots
    for (let i = 0; i < slots.length; i++) {
      const slot = slots[i] as CursorSlot
      if ((typeof slot === 'string' ? slot : slot.channel) === position.channel) {
        slots[i] = position
        return
      }
    }
  }

  /** The cursor's text: `channel` or `channel=epoch-offset` per channel, joined by commas. */
  format(): string {
    let text = ''
    for (const slot of this.#slots) {
      const part = typeof slot === 'string' ? slot : `${slot.channel}=${formatId(slot.epoch, slot.offset)}`
      text = text === '' ? part : `${text},${part}`
    }
    return text
  }
}
