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
import { EPOCH_PATTERN } from './position.js'

type Fields = Record<string, unknown>

/**
 * The fields of each frame type, as `<kind><name>` words. Kinds: `s` string, `n` count (a safe
 * integer ≥ 0), `p` positive count, `e` epoch, `i` message id naming the frame's `offset`, `a`
 * array of strings; upper case: the field is optional. A table of strings is a fraction of the
 * size of one function per type in the browser bundle.
 */
const FIELDS: Record<string, string> = {
  hello: 'nv ssession pheartbeatMs nmaxFrameBytes atransports NpollHoldMs',
  subscribed: 'schannel eepoch noffset Srid Sgap',
  message: 'schannel sevent noffset iid',
  gap: 'schannel sreason eepoch noffset',
  ack: 'srid schannel noffset iid',
  error: 'scode smessage Srid Schannel NretryMs',
  ping: '',
  close: 'scode smessage NretryMs',
  presence: 'schannel saction',
}

/** A presence member (protocol.md 2.4) has a string `id`, which the client keys its member set by. */
const isMember = (value: unknown): boolean => isString((value as Fields | null)?.id)

/** The `members` of a presence `sync`, or the `member` of a `join` or `leave`. */
const validPresence = ({ action, members, member }: Fields): boolean =>
  action === 'sync' ? Array.isArray(members) && members.every(isMember) : /^(join|leave)$/.test(action as string) && isMember(member)

const isString = (value: unknown): value is string => typeof value === 'string'

/** Whether `value` is of `kind` (lower case); `frame.offset` is checked before the id that names it. */
const valid = (kind: string, value: unknown, frame: Fields): boolean =>
  kind === 'a'
    ? Array.isArray(value) && value.every(isString)
    : kind > 'm'
      ? kind === 's'
        ? isString(value)
        : Number.isSafeInteger(value) && (value as number) >= +(kind === 'p') // n, p
      : // e, i: the epoch, or the id `<epoch>-<offset>` with the frame's offset
        isString(value) && EPOCH_PATTERN.test(kind === 'e' ? value : value.slice(0, value.lastIndexOf('-'))) &&
        (kind === 'e' || value.slice(value.lastIndexOf('-') + 1) === String(frame.offset))

/** Whether `frame` has the fields `spec` (a non-empty value of {@link FIELDS}) lists. */
const matches = (frame: Fields, spec: string): boolean =>
  spec.split(' ').every((word) => {
    const kind = word.charAt(0)
    const value = frame[word.slice(1)]
    return (kind < 'a' && value === undefined) || valid(kind.toLowerCase(), value, frame)
  })

/**
 * Decodes one frame's JSON text. Returns undefined for a well-formed frame of a type this client
 * does not know (to be ignored); throws a `PROTOCOL_ERROR` {@link PushError} for anything malformed.
 */
export function decodeServerFrame(text: string): ServerFrame | undefined {
  let frame: Fields | undefined
  let cause: unknown
  try {
    frame = JSON.parse(text) as Fields
  } catch (error) {
    cause = error // not JSON: no type below
  }
  const type = frame?.type
  // A `type` that is not a string is never a property key here: an object's key conversion runs
  // its own `toString` (which may throw, as `{"toString":0}` does).
  const spec = isString(type) && Object.hasOwn(FIELDS, type) ? FIELDS[type] : undefined
  // Only an object can have a string `type` (JSON.parse gives arrays no named properties); `ping` has no fields.
  if (!isString(type) || (spec && !matches(frame as Fields, spec)) || (type === 'presence' && !validPresence(frame as Fields))) {
    throw new PushError('PROTOCOL_ERROR', `malformed frame: ${text.slice(0, 80)}`, { cause })
  }
  return spec === undefined ? undefined : (frame as unknown as ServerFrame)
}
