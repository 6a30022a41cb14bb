import { z } from 'zod'
import type { ErrorFrame } from '../../protocol/frames.js'
import { CHANNEL_PATTERN, parseId } from '../../protocol/position.js'
import { errorFrame } from '../hub/out-frame.js'

// Schemas for every frame a client may send (protocol.md 2.2). z.object drops
// unknown fields, which is what "receivers MUST ignore fields they do not know" asks.

const channel = z.string().regex(CHANNEL_PATTERN)
/** rid, event and key: 1..64 characters. */
const shortString = z.string().min(1).max(64)
const since = z.string().transform((value, ctx) => {
  const position = parseId(value)
  if (!position) {
    ctx.addIssue({ code: 'custom', message: 'must be a message id <epoch>-<offset>' })
    return z.NEVER
  }
  return position
})

/** A subscribe's `rewind`: how many of the newest messages to replay; the hub clamps it to `maxRewind`. */
const rewind = z.custom<number>(
  (value) => Number.isSafeInteger(value) && (value as number) >= 0,
  'expected a whole number of messages, 0 or more',
)

const publishFields = {
  channel,
  event: shortString.optional(),
  // z.unknown() is required in zod 4 objects: a publish without `data` is malformed.
  data: z.unknown(),
  key: shortString.optional(),
}

export const clientFrameSchema = z.discriminatedUnion('type', [
  z
    .object({ type: z.literal('subscribe'), channel, rid: shortString.optional(), since: since.optional(), rewind: rewind.optional() })
    .refine((frame) => frame.since === undefined || !frame.rewind, {
      path: ['rewind'],
      message: 'not with since: a subscribe resumes from a position or rewinds, not both',
    }),
  z.object({ type: z.literal('unsubscribe'), channel }),
  z.object({ type: z.literal('publish'), rid: shortString, ...publishFields }),
  z.object({ type: z.literal('pong') }),
])

/** The body of `POST <base>/publish`: a publish frame whose `rid` (and `type`) may be left out. */
export const httpPublishSchema = z.object({
  type: z.literal('publish').optional(),
  rid: shortString.default('http'),
  ...publishFields,
})

export type Decoded<T> = { ok: true; frame: T } | { ok: false; error: ErrorFrame }

/**
 * Decodes one client frame of `bytes` UTF-8 bytes. Never throws: whatever the
 * input, the result is the frame or the `error` frame to answer with.
 */
export function decodeFrame<T>(
  schema: z.ZodType<T>,
  text: string,
  bytes: number,
  maxFrameBytes: number,
): Decoded<T> {
  if (bytes > maxFrameBytes) {
    return reject(errorFrame('FRAME_TOO_LARGE', `frame of ${bytes} bytes exceeds the server's maxFrameBytes of ${maxFrameBytes}`))
  }
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch {
    return reject(errorFrame('BAD_FRAME', 'not JSON'))
  }
  const result = schema.safeParse(raw)
  if (result.success) return { ok: true, frame: result.data }
  return reject(describeIssues(raw, result.error.issues))
}

function reject<T>(error: ErrorFrame): Decoded<T> {
  return { ok: false, error }
}

function describeIssues(raw: unknown, issues: readonly z.core.$ZodIssue[]): ErrorFrame {
  // Echo rid and channel when they are usable, so the client can tell which request failed.
  const fields = typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? (raw as Record<string, unknown>) : {}
  const rid = typeof fields.rid === 'string' && fields.rid.length >= 1 && fields.rid.length <= 64 ? fields.rid : undefined
  // Echoed only when it could be a channel name: the client gets back no more than it could have meant.
  const channelName = typeof fields.channel === 'string' && fields.channel.length <= 128 ? fields.channel : undefined
  const about = { rid, channel: channelName }
  // INVALID_CHANNEL only when the name is the sole problem; anything else is a malformed frame.
  if (issues.length > 0 && issues.every((issue) => issue.path[0] === 'channel' && issue.code === 'invalid_format')) {
    return errorFrame(
      'INVALID_CHANNEL',
      `channel ${JSON.stringify(channelName)}: 1 to 128 of A-Z a-z 0-9 _ . : @ / - (protocol.md 1)`,
      about,
    )
  }
  const first = issues[0]
  if (!first) return errorFrame('BAD_FRAME', 'invalid frame', about)
  if (first.code === 'invalid_union' && first.path[0] === 'type') {
    return errorFrame('BAD_FRAME', 'type: expected subscribe, unsubscribe, publish or pong (protocol.md 2.2)', about)
  }
  const where = first.path.length > 0 ? first.path.join('.') : 'frame'
  return errorFrame('BAD_FRAME', `${where}: ${explain(first, valueAt(raw, first.path))} (protocol.md 2.2)`, about)
}

const valueAt = (raw: unknown, path: readonly PropertyKey[]): unknown =>
  path.reduce<unknown>((value, key) => (typeof value === 'object' && value !== null ? (value as Record<PropertyKey, unknown>)[key] : undefined), raw)

/**
 * What is wrong with one field and what is allowed, in our words: zod's own messages ("Invalid
 * input: expected nonoptional, received undefined") describe the schema, not the protocol.
 */
function explain(issue: z.core.$ZodIssue, value: unknown): string {
  if (value === undefined) return 'missing'
  switch (issue.code) {
    case 'invalid_type':
      return `expected a ${issue.expected}, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`}`
    case 'too_small':
    case 'too_big':
      return 'expected 1 to 64 characters'
    case 'invalid_value':
      return `expected ${issue.values.map((allowed) => JSON.stringify(allowed)).join(' or ')}`
    case 'custom':
      return issue.message
    default:
      return 'not allowed here'
  }
}
