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
export const EPOCH_PATTERN = /^\w{1,32}$/

export function isChannelName(name: unknown): name is string {
  return typeof name === 'string' && CHANNEL_PATTERN.test(name)
}

export function formatId(epoch: string, offset: number): string {
  return `${epoch}-${offset}`
}

/** Parses `${epoch}-${offset}`; undefined when malformed. */
export function parseId(id: string): Position | undefined {
  const [, epoch, digits] = /^(\w{1,32})-(\d{1,16})$/.exec(id) ?? []
  const offset = Number(digits)
  return epoch && Number.isSafeInteger(offset) ? { epoch, offset } : undefined
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
export const formatCursor = (entries: CursorEntry[]): string =>
  entries.map(({ channel, position }) => (position ? `${channel}=${position.epoch}-${position.offset}` : channel)).join(',')

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
