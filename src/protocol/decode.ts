/**
 * Client-side decoder of server frames.
 *
 * Hand-rolled on purpose: the server validates client frames with zod, but zod would multiply the
 * browser bundle. This checks exactly the fields the client relies on, with the types protocol.md
 * section 2.1 gives them, and no more: unknown fields are ignored and unknown frame types are
 * skipped (protocol.md 2), and open-ended strings (error codes, gap reasons) are accepted as they
 * come so that a newer server does not make an older client reconnect in a loop.
 */
import { PushError } from '../errors.js'
import type { ServerFrame } from './frames.js'
import { EPOCH_PATTERN, parseId } from './position.js'

type Fields = Record<string, unknown>

const isString = (value: unknown): value is string => typeof value === 'string'
const isCount = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0
const isEpoch = (value: unknown): boolean => isString(value) && EPOCH_PATTERN.test(value)
const optional = (value: unknown, check: (value: unknown) => boolean): boolean =>
  value === undefined || check(value)
/** A message id must name the offset the frame carries. */
const isIdOf = (id: unknown, offset: unknown): boolean => isString(id) && parseId(id)?.offset === offset

const checks: Record<string, (frame: Fields) => boolean> = {
  hello: (f) =>
    isCount(f.v) &&
    isString(f.session) &&
    isCount(f.heartbeatMs) &&
    f.heartbeatMs > 0 &&
    isCount(f.maxFrameBytes) &&
    Array.isArray(f.transports) &&
    f.transports.every(isString),
  subscribed: (f) =>
    isString(f.channel) && isEpoch(f.epoch) && isCount(f.offset) && optional(f.rid, isString) && optional(f.gap, isString),
  message: (f) => isString(f.channel) && isString(f.event) && isCount(f.offset) && isIdOf(f.id, f.offset),
  gap: (f) => isString(f.channel) && isString(f.reason) && isEpoch(f.epoch) && isCount(f.offset),
  ack: (f) => isString(f.rid) && isString(f.channel) && isCount(f.offset) && isIdOf(f.id, f.offset),
  error: (f) => isString(f.code) && isString(f.message) && optional(f.rid, isString) && optional(f.channel, isString),
  ping: () => true,
  close: (f) => isString(f.code) && isString(f.message) && optional(f.retryMs, isCount),
}

/**
 * Decodes one frame's JSON text. Returns undefined for a well-formed frame of a type this client
 * does not know (to be ignored); throws a `PROTOCOL_ERROR` {@link PushError} for anything malformed.
 */
export function decodeServerFrame(text: string): ServerFrame | undefined {
  let frame: unknown
  try {
    frame = JSON.parse(text)
  } catch (cause) {
    throw new PushError('PROTOCOL_ERROR', 'server frame is not JSON', { cause })
  }
  if (typeof frame !== 'object' || frame === null || Array.isArray(frame) || !isString((frame as Fields).type)) {
    throw new PushError('PROTOCOL_ERROR', 'server frame is not an object with a type')
  }
  const { type } = frame as Fields
  const check = Object.hasOwn(checks, type as string) ? checks[type as string] : undefined
  if (!check) return undefined
  if (!check(frame as Fields)) throw new PushError('PROTOCOL_ERROR', `malformed ${String(type)} frame`)
  return frame as ServerFrame
}
