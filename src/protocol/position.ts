/**
 * Positions: every channel has an epoch (the id of its history) and an offset
 * that grows by one per message. A message id is `${epoch}-${offset}`.
 * A stream cursor lists several channels with their positions, for transports
 * that carry one stream per client (the SSE `id:` field, HTTP poll requests).
 */

export interface Position {
  epoch: string
  offset: number
}

/** Channel names: 1 to 128 of A-Z a-z 0-9 _ . : @ / - */
export const CHANNEL_PATTERN = /^[\w.:@/-]{1,128}$/
/** Epochs: 1 to 32 of A-Z a-z 0-9 _ (never `-`, which separates it from the offset). */
export const EPOCH_PATTERN = /^[A-Za-z0-9_]{1,32}$/

export function isChannelName(name: unknown): name is string {
  return typeof name === 'string' && CHANNEL_PATTERN.test(name)
}

export function formatId(epoch: string, offset: number): string {
  return `${epoch}-${offset}`
}

/** Parses `${epoch}-${offset}`; undefined when malformed. */
export function parseId(id: string): Position | undefined {
  const dash = id.lastIndexOf('-')
  if (dash <= 0) return undefined
  const epoch = id.slice(0, dash)
  const digits = id.slice(dash + 1)
  if (!EPOCH_PATTERN.test(epoch) || !/^\d{1,16}$/.test(digits)) return undefined
  const offset = Number(digits)
  return Number.isSafeInteger(offset) ? { epoch, offset } : undefined
}

/** One entry of a stream cursor: a channel and, when resuming, its position. */
export interface CursorEntry {
  channel: string
  position?: Position
}

/**
 * Formats a stream cursor: entries joined by `,`, each `channel` (live from
 * now) or `channel=epoch-offset` (resume after that message).
 */
export function formatCursor(entries: Iterable<CursorEntry>): string {
  let out = ''
  for (const { channel, position } of entries) {
    if (out) out += ','
    out += position ? `${channel}=${position.epoch}-${position.offset}` : channel
  }
  return out
}

/** Parses a stream cursor; undefined when any entry is malformed or a channel repeats. */
export function parseCursor(cursor: string, maxEntries = 256): CursorEntry[] | undefined {
  if (cursor === '') return []
  const parts = cursor.split(',')
  if (parts.length > maxEntries) return undefined
  const seen = new Set<string>()
  const entries: CursorEntry[] = []
  for (const part of parts) {
    const eq = part.indexOf('=')
    const channel = eq === -1 ? part : part.slice(0, eq)
    if (!isChannelName(channel) || seen.has(channel)) return undefined
    seen.add(channel)
    if (eq === -1) {
      entries.push({ channel })
      continue
    }
    const position = parseId(part.slice(eq + 1))
    if (!position) return undefined
    entries.push({ channel, position })
  }
  return entries
}
