import { PROTOCOL_VERSION } from '../../protocol/frames.js'
import type {
  AckFrame,
  CloseFrame,
  ErrorCode,
  ErrorFrame,
  GapReason,
  HelloFrame,
  ServerFrame,
  TransportName,
} from '../../protocol/frames.js'
import { formatId } from '../../protocol/position.js'
import type { StoredMessage } from '../brokers/broker.js'

/** A channel's position after a frame that moves it (`subscribed`, `message`, `gap`). */
export interface ChannelPosition {
  channel: string
  epoch: string
  offset: number
}

/**
 * How one endpoint puts a frame on its wire (a WebSocket frame, an SSE
 * `data:` line, an iframe script argument). Each endpoint defines its own
 * encodings beside its Connection class; an {@link OutFrame} caches each
 * encoding's result, so adding a transport touches no shared encoder.
 */
export class FrameEncoding<T extends NonNullable<unknown>> {
  /** This encoding's slot in every frame's cache: an array index is the cheapest lookup on the fan-out path. */
  readonly slot: number = nextEncodingSlot++
  readonly encode: (frame: OutFrame) => T

  /** `encode` must be a pure function of the frame: its result is shared by every connection the frame goes to. */
  constructor(encode: (frame: OutFrame) => T) {
    this.encode = encode
  }
}

let nextEncodingSlot = 0

/**
 * A server frame, its JSON and its wire encodings. Fan-out hands one OutFrame
 * to every subscriber, so the JSON and each endpoint's encoding are computed
 * at most once per message, not once per connection (lazily: a message with
 * only SSE subscribers never builds the WebSocket bytes).
 */
export class OutFrame {
  readonly frame: ServerFrame
  /** Set on frames that move a channel's position; SSE turns it into the `id:` cursor. */
  readonly position: ChannelPosition | undefined
  #json: string | undefined
  /** Results of {@link FrameEncoding}s by slot; made on first use. */
  #encodings: unknown[] | undefined

  constructor(frame: ServerFrame, position?: ChannelPosition) {
    this.frame = frame
    this.position = position
  }

  /** The frame as JSON; never contains a raw LF, so frames can be joined by LF. */
  get json(): string {
    return (this.#json ??= JSON.stringify(this.frame))
  }

  /** The frame in `encoding`'s wire form, encoded on first use and then shared. */
  encoded<T extends NonNullable<unknown>>(encoding: FrameEncoding<T>): T {
    const encodings = (this.#encodings ??= [])
    const cached = encodings[encoding.slot]
    if (cached !== undefined) return cached as T
    const value = encoding.encode(this)
    encodings[encoding.slot] = value
    return value
  }
}

export const PING = new OutFrame({ type: 'ping' })
/** The heartbeat's batch, shared by every connection it is written to alone. */
export const PING_ALONE: readonly OutFrame[] = Object.freeze([PING])

export function helloFrame(
  session: string,
  heartbeatMs: number,
  maxFrameBytes: number,
  transports: TransportName[],
  pollHoldMs?: number,
): OutFrame {
  const frame: HelloFrame = { type: 'hello', v: PROTOCOL_VERSION, session, heartbeatMs, maxFrameBytes, transports }
  if (pollHoldMs !== undefined) frame.pollHoldMs = pollHoldMs
  return new OutFrame(frame)
}

export function subscribedFrame(
  channel: string,
  epoch: string,
  offset: number,
  rid: string | undefined,
  gap: GapReason | undefined,
): OutFrame {
  const frame: ServerFrame = { type: 'subscribed', channel, epoch, offset }
  if (rid !== undefined) frame.rid = rid
  if (gap !== undefined) frame.gap = gap
  return new OutFrame(frame, { channel, epoch, offset })
}

export function messageFrame(message: StoredMessage): OutFrame {
  const { channel, event, data, epoch, offset } = message
  return new OutFrame(
    { type: 'message', channel, event, data, offset, id: formatId(epoch, offset) },
    { channel, epoch, offset },
  )
}

export function gapFrame(channel: string, reason: GapReason, epoch: string, offset: number): OutFrame {
  return new OutFrame({ type: 'gap', channel, reason, epoch, offset }, { channel, epoch, offset })
}

/** How much of a client's text (a channel name that isn't one) an error message quotes. */
const QUOTED_CHARACTERS = 64

/** `text` as an error message may quote it: JSON-quoted, its first 64 characters and `…` when longer. */
export function quoteForMessage(text: string): string {
  return JSON.stringify(text.length > QUOTED_CHARACTERS ? `${text.slice(0, QUOTED_CHARACTERS)}…` : text)
}

export function errorFrame(
  code: ErrorCode,
  message: string,
  about: { rid?: string | undefined; channel?: string | undefined; retryMs?: number | undefined } = {},
): ErrorFrame {
  const frame: ErrorFrame = { type: 'error', code, message }
  if (about.rid !== undefined) frame.rid = about.rid
  if (about.channel !== undefined) frame.channel = about.channel
  if (about.retryMs !== undefined) frame.retryMs = about.retryMs
  return frame
}

export function ackFrame(rid: string, channel: string, epoch: string, offset: number): AckFrame {
  return { type: 'ack', rid, channel, offset, id: formatId(epoch, offset) }
}

export function closeFrame(code: ErrorCode, message: string, retryMs?: number): OutFrame {
  const frame: CloseFrame = { type: 'close', code, message }
  if (retryMs !== undefined) frame.retryMs = retryMs
  return new OutFrame(frame)
}
