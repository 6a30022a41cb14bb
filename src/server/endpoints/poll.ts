import type { IncomingMessage, ServerResponse } from 'node:http'
import { Connection } from '../hub/connection.js'
import type { FlushScheduler } from '../hub/connection.js'
import { FrameEncoding, errorFrame } from '../hub/out-frame.js'
import type { OutFrame } from '../hub/out-frame.js'
import type { Endpoint } from './endpoint.js'
import { sendFrame } from './http-io.js'
import type { PollSessions } from '../policy/limits.js'
import { admitStreamRequest, cursorRequests, openHubConnection, refuseWithFrame, requireGet } from './stream-request.js'
import type { StreamRequestContext } from './stream-request.js'

/**
 * Once a held poll has its first frame, it waits this long (ms) for more
 * before answering, so a burst published over a few event-loop turns goes
 * out in one answer rather than one poll round trip per message.
 */
const COALESCE_MS = 5
/** The most an answer takes in UTF-8 bytes before it stops at a frame boundary (protocol.md 3.5). */
const MAX_ANSWER_BYTES = 1024 * 1024
/** `session` parameter: base64url, as this server makes them, with room for other servers' ids. */
const SESSION_PATTERN = /^[A-Za-z0-9_-]{1,64}$/
const HOLD_PATTERN = /^\d{1,10}$/

/** A frame's NDJSON line and its length in UTF-8 bytes, counted once per message for the answer's size limit. */
const NDJSON_LINE = new FrameEncoding((frame) => ({ line: frame.json, bytes: Buffer.byteLength(frame.json) }))

type PollState = 'resolving' | 'holding' | 'answered'

export interface PollConnectionOptions {
  transport: 'long-polling' | 'short-polling'
  /** The session the client sent; a new one when it sent none. */
  session: string | undefined
  maxAnswerBytes: number
  /** Forgets the connection in the hub; called once the poll is answered or gone. */
  release: () => void
}

/**
 * One poll request, as a connection that lives until it is answered: frames
 * the hub sends are collected, and the response goes out in one piece, as
 * NDJSON, once there is something (after a short coalescing wait) or when the
 * hold time is up.
 */
export class PollConnection extends Connection {
  readonly transport: 'long-polling' | 'short-polling'
  // protocol.md 3.5: a held poll answers within its hold time; a ping would only cut it short.
  override readonly wantsPing = false
  readonly #res: ServerResponse
  readonly #maxAnswerBytes: number
  readonly #release: () => void
  readonly #lines: string[] = []
  #bytes = 0
  /** The answer reached its size limit: the rest waits for the next poll. */
  #full = false
  #state: PollState = 'resolving'
  /** The hold timer, then the coalescing timer. */
  #timer: ReturnType<typeof setTimeout> | undefined
  #coalescing = false
  /** The response closed: the client went away, or the answer is out. */
  #gone = false

  constructor(res: ServerResponse, scheduler: FlushScheduler, options: PollConnectionOptions) {
    super(scheduler, options.session)
    this.transport = options.transport
    this.#res = res
    this.#maxAnswerBytes = options.maxAnswerBytes
    this.#release = options.release
    // A client that gives up mid-hold leaves nothing behind: no timer, no subscriptions.
    res.on('close', () => {
      this.#gone = true
      this.#answer()
    })
  }

  protected write(frames: readonly OutFrame[]): void {
    if (this.#state === 'answered') return
    for (const frame of frames) {
      // At a frame boundary, so each channel gets a prefix of its frames and
      // the client's next poll resumes exactly where this answer stops.
      if (this.#bytes >= this.#maxAnswerBytes) {
        this.#full = true
        break
      }
      const { line, bytes } = frame.encoded(NDJSON_LINE)
      this.#lines.push(line)
      this.#bytes += bytes + 1
    }
    if (this.#state !== 'holding') return
    if (this.#full) {
      this.#answer()
    } else if (!this.#coalescing && this.#lines.length > 0) {
      this.#coalescing = true
      clearTimeout(this.#timer)
      this.#timer = setTimeout(this.#answer, COALESCE_MS)
    }
  }

  /**
   * Called once the cursor's subscriptions have resolved: answers at once
   * when there is something to send (or `holdMs` is 0), else waits for live
   * frames up to `holdMs`.
   */
  hold(holdMs: number): void {
    if (this.#state !== 'resolving') return
    this.flush()
    if (this.#lines.length > 0 || holdMs <= 0) {
      this.#answer()
      return
    }
    this.#state = 'holding'
    this.#timer = setTimeout(this.#answer, holdMs)
  }

  /** Shutdown: the `close` frame is among the lines already. */
  protected end(): void {
    this.#answer()
  }

  bufferedBytes(): number {
    // The answer is bounded by maxAnswerBytes and leaves the hub when written.
    return 0
  }

  /** A full or sent answer takes nothing more: a replay stops here, and the next poll resumes it. */
  override outputBytes(): number {
    if (this.#full || this.#state === 'answered') return Number.POSITIVE_INFINITY
    return super.outputBytes() + this.#bytes
  }

  isResponsive(): boolean {
    return true
  }

  terminate(): void {
    this.#answer()
    this.#res.destroy()
  }

  readonly #answer = (): void => {
    if (this.#state === 'answered') return
    this.#state = 'answered'
    clearTimeout(this.#timer)
    this.#release()
    const res = this.#res
    if (this.#gone || res.headersSent || res.destroyed) return
    if (this.#lines.length === 0) {
      res.writeHead(204, { 'Cache-Control': 'no-store' })
      res.end()
      return
    }
    const body = `${this.#lines.join('\n')}\n`
    res.writeHead(200, {
      'Content-Type': 'application/x-ndjson; charset=utf-8',
      // Each line's UTF-8 length plus its LF, counted as the lines came: no second pass over the body.
      'Content-Length': String(this.#bytes),
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
    })
    res.end(body)
  }
}

export interface PollEndpointOptions extends StreamRequestContext {
  /** The longest hold, and the hold of a request without `hold`; 0 when long-polling is not offered. */
  maxHoldMs: number
  /** Caps answers further: a poll never holds more than the slow-consumer limit. */
  maxBufferedBytes: number
  hello: (session: string) => OutFrame
  /** The places of poll sessions in the connection limits. */
  sessions: PollSessions
}

/** `GET <base>/poll?cursor=<stream cursor>[&hold=<ms>][&session=<id>]` (protocol.md 3.5, 3.6). */
export class PollEndpoint implements Endpoint {
  readonly #options: PollEndpointOptions

  constructor(options: PollEndpointOptions) {
    this.#options = options
  }

  close(): void {
    this.#options.sessions.close()
  }

  async handle(req: IncomingMessage, res: ServerResponse, query: URLSearchParams): Promise<void> {
    if (!requireGet(req, res)) return
    const { hub, maxHoldMs, maxBufferedBytes, hello } = this.#options
    const holdParam = query.get('hold')
    if (holdParam !== null && !HOLD_PATTERN.test(holdParam)) {
      sendFrame(res, 400, errorFrame('BAD_FRAME', 'hold must be a whole number of milliseconds'))
      return
    }
    const sessionParam = query.get('session')
    if (sessionParam !== null && !SESSION_PATTERN.test(sessionParam)) {
      sendFrame(res, 400, errorFrame('BAD_FRAME', 'session must match ^[A-Za-z0-9_-]{1,64}$'))
      return
    }
    // The client may lower the hold, never raise it.
    const holdMs = holdParam === null ? maxHoldMs : Math.min(Number(holdParam), maxHoldMs)
    const transport = holdMs === 0 ? 'short-polling' : 'long-polling'
    // A session counts in the connection limits as one connection, for as long as it polls.
    const admission = this.#options.sessions.admit(sessionParam ?? undefined, this.#options.clientIp(req))
    if (!admission.ok) return refuseWithFrame(res)(503, admission.message, admission.retryMs)
    const { place } = admission
    // `on`, not `once`: end is idempotent, and once would wrap it in two more objects per poll.
    res.on('close', place.end)
    const admitted = await admitStreamRequest(req, res, query, transport, this.#options, { charges: place.charges })
    if (!admitted) return

    const connection: PollConnection = new PollConnection(res, hub.scheduler, {
      transport,
      session: sessionParam ?? undefined,
      maxAnswerBytes: Math.min(MAX_ANSWER_BYTES, maxBufferedBytes),
      release: () => hub.remove(connection),
    })
    place.bind(connection.session)
    // protocol.md 3.5: the first poll (no session) is a handshake: it gets hello
    // and a subscribed per entry; later polls continue the positions they carry.
    const first = sessionParam === null
    await openHubConnection(
      hub,
      connection,
      res,
      cursorRequests(admitted.entries, !first),
      first ? hello(connection.session) : undefined,
      admitted.identity,
    )
    connection.hold(holdMs)
  }
}
