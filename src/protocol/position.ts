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
  position?: Position | undefined
  /** Without a position: replay this many of the channel's newest messages first (protocol.md 4, rule 5). */
  rewind?: number | undefined
}

/**
 * Formats a stream cursor: entries joined by `,`, each `channel` (live from
 * now), `channel=epoch-offset` (resume after that message) or `channel~n`
 * (the newest n messages, then live).
 */
export const formatCursor = (entries: CursorEntry[]): string =>
  entries
    .map(({ channel, position, rewind }) =>
      position ? `${channel}=${position.epoch}-${position.offset}` : rewind ? `${channel}~${rewind}` : channel,
    )
    .join(',')

/** A rewind count of a cursor entry (`~` then 1 to 10 digits); undefined when malformed. */
export const parseRewind = (digits: string): number | undefined => (/^\d{1,10}$/.test(digits) ? Number(digits) : undefined)

/** Parses a stream cursor; undefined when any entry is malformed or a channel repeats. */
export function parseCursor(cursor: string, maxEntries = 256): CursorEntry[] | undefined {
  if (cursor === '') return []
  const parts = cursor.split(',')
  if (parts.length > maxEntries) return undefined
  const seen = new Set<string>()
  const entries: CursorEntry[] = []
  for (const part of parts) {
    const split = part.search(/[=~]/)
    const channel = split === -1 ? part : part.slice(0, split)
    if (!isChannelName(channel) || seen.has(channel)) return undefined
    seen.add(channel)
    if (split === -1) {
      entries.push({ channel })
      continue
    }
    const rest = part.slice(split + 1)
    const entry: CursorEntry = part[split] === '~' ? { channel, rewind: parseRewind(rest) } : { channel, position: parseId(rest) }
    if (!entry.position && entry.rewind === undefined) return undefined
    entries.push(entry)
  }
  return entries
}
