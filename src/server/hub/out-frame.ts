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
 * A server frame with its encodings. Fan-out hands one OutFrame to every
 * subscriber, so each encoding is computed at most once per message, not once
 * per connection (lazily: a message with only SSE subscribers never builds the
 * WebSocket payload).
 */
export class OutFrame {
  readonly frame: ServerFrame
  /** Set on frames that move a channel's position; SSE turns it into the `id:` cursor. */
  readonly position: ChannelPosition | undefined
  #json: string | undefined
  #byteLength: number | undefined
  #wsPayload: Buffer | undefined
  #wsFrame: Buffer | undefined
  #sseData: string | undefined
  #soleIdLine: string | undefined
  #scriptLiteral: string | undefined
  #scriptLiteralBytes: number | undefined

  constructor(frame: ServerFrame, position?: ChannelPosition) {
    this.frame = frame
    this.position = position
  }

  /** The frame as JSON; never contains a raw LF, so frames can be joined by LF. */
  get json(): string {
    return (this.#json ??= JSON.stringify(this.frame))
  }

  /** Length of {@link json} in UTF-8 bytes. */
  get byteLength(): number {
    return (this.#byteLength ??= this.#wsPayload?.length ?? Buffer.byteLength(this.json))
  }

  /**
   * UTF-8 bytes of {@link json}. ws would otherwise re-encode the string for
   * every connection; a Buffer sent with `binary: false` goes out as a text
   * message as is.
   */
  get wsPayload(): Buffer {
    return (this.#wsPayload ??= Buffer.from(this.json, 'utf8'))
  }

  /**
   * {@link wsPayload} as a whole WebSocket text frame (RFC 6455 5.2: FIN,
   * opcode 1, unmasked as server frames are, no extension bits). Built once
   * and written as is to every connection, so fan-out costs one socket write
   * per connection and no per-connection header or send options.
   */
  get wsFrame(): Buffer {
    return (this.#wsFrame ??= wsTextFrame(this.wsPayload))
  }

  /** The SSE `data:` line (with its LF, without the event's terminating blank line). */
  get sseData(): string {
    return (this.#sseData ??= `data: ${this.json}\n`)
  }

  /**
   * {@link json} as a JavaScript string literal that is safe inside an HTML
   * `<script>` element (protocol.md 3.7). A string, not an object literal:
   * `"__proto__"` keys in an object literal set the prototype instead of a property.
   */
  get scriptLiteral(): string {
    return (this.#scriptLiteral ??= scriptSafe(JSON.stringify(this.json)))
  }

  /** Length of {@link scriptLiteral} in UTF-8 bytes. */
  get scriptLiteralBytes(): number {
    return (this.#scriptLiteralBytes ??= Buffer.byteLength(this.scriptLiteral))
  }

  /**
   * The SSE `id:` line for a stream whose only channel is this frame's: then
   * the stream cursor is just this channel's position, the same for every
   * such stream.
   */
  get soleIdLine(): string {
    const p = this.position
    if (!p) throw new Error('soleIdLine of a frame without position')
    return (this.#soleIdLine ??= `id: ${p.channel}=${formatId(p.epoch, p.offset)}\n`)
  }
}

/** An unmasked, final WebSocket text frame carrying `payload`. */
export function wsTextFrame(payload: Buffer): Buffer {
  const length = payload.length
  const headerLength = length < 126 ? 2 : length < 65536 ? 4 : 10
  const frame = Buffer.allocUnsafe(headerLength + length)
  frame[0] = 0x81
  if (length < 126) {
    frame[1] = length
  } else if (length < 65536) {
    frame[1] = 126
    frame.writeUInt16BE(length, 2)
  } else {
    frame[1] = 127
    frame.writeUInt32BE(Math.floor(length / 2 ** 32), 2)
    frame.writeUInt32BE(length >>> 0, 6)
  }
  payload.copy(frame, headerLength)
  return frame
}

const SCRIPT_ESCAPES: Record<string, string> = {
  '<': '\\u003c',
  '>': '\\u003e',
  '&': '\\u0026',
  '\u2028': '\\u2028',
  '\u2029': '\\u2029',
}

/**
 * Makes JSON text (or a JSON string literal) safe inside an HTML `<script>`:
 * without `<` no `</script>`, `<!--` or `<script` can end or change the
 * script element, and U+2028/U+2029 end lines in pre-2019 JavaScript. These
 * characters only occur inside JSON strings, where the `\uXXXX` escape means
 * the same character, so the text still parses to the same value.
 */
export function scriptSafe(json: string): string {
  return json.replace(/[<>&\u2028\u2029]/g, (c) => SCRIPT_ESCAPES[c] ?? c)
}

export const PING = new OutFrame({ type: 'ping' })

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

export function errorFrame(
  code: ErrorCode,
  message: string,
  about: { rid?: string | undefined; channel?: string | undefined } = {},
): ErrorFrame {
  const frame: ErrorFrame = { type: 'error', code, message }
  if (about.rid !== undefined) frame.rid = about.rid
  if (about.channel !== undefined) frame.channel = about.channel
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
