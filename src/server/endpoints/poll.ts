import type { IncomingMessage, ServerResponse } from 'node:http'
import { Connection } from '../hub/connection.js'
import type { FlushScheduler } from '../hub/connection.js'
import { FrameEncoding, errorFrame } from '../hub/out-frame.js'
import type { OutFrame } from '../hub/out-frame.js'
import type { Hub } from '../hub/hub.js'
import type { Endpoint } from './endpoint.js'
import { sendFrame } from './http-io.js'
import type { PollPlace, PollSessions } from '../policy/limits.js'
import { admitStreamRequest, cursorRequests, refuseWithFrame, requireGet } from './stream-request.js'
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

/** A frame as one NDJSON line, LF included, in UTF-8: encoded once per message, then shared by every answer that carries it. */
const NDJSON_LINE = new FrameEncoding((frame) => Buffer.from(`${frame.json}\n`))

/** A held poll is `holding` until its first frame, then `coalescing` until it answers. */
type PollState = 'resolving' | 'holding' | 'coalescing' | 'answered'

/**
 * What every poll of one endpoint shares, so that a held poll keeps one
 * reference to it instead of its own closures and timer: the hub to leave,
 * the deadlines of held polls, and the last answer's body.
 */
export class PollRounds {
  readonly #hub: Hub
  /** The most an answer takes (UTF-8 bytes) before it stops at a frame boundary. */
  readonly maxAnswerBytes: number
  /** Polls waiting, by how long they wait (a hold time, or the coalescing window), each with its deadline. */
  readonly #waits = new Map<number, PollWait>()
  /** The last answer of several frames, and its body: the next poll answered with the same frames sends the same bytes. */
  #lastAnswer: { frames: readonly OutFrame[]; body: Buffer } | undefined

  constructor(hub: Hub, maxAnswerBytes: number) {
    this.#hub = hub
    this.maxAnswerBytes = maxAnswerBytes
  }

  release(connection: PollConnection): void {
    this.#hub.remove(connection)
  }

  /**
   * Answers `connection` in `delayMs` unless it is answered before (then call
   * {@link unwait}). One timer per distinct delay, not one per held poll: the
   * polls of one delay are due in the order they came, so the timer only
   * ever waits for the oldest.
   */
  wait(connection: PollConnection, delayMs: number): void {
    let wait = this.#waits.get(delayMs)
    if (!wait) {
      wait = { delayMs, due: new Map(), timer: undefined, timerDue: 0 }
      this.#waits.set(delayMs, wait)
    }
    // Milliseconds since the module loaded: a small integer, which V8 keeps without a heap number.
    const due = Date.now() - CLOCK_ORIGIN + delayMs
    wait.due.set(connection, due)
    if (wait.timer === undefined) this.#schedule(wait, due, delayMs)
  }

  #schedule(wait: PollWait, due: number, inMs: number): void {
    wait.timerDue = due
    wait.timer = setTimeout(this.#expire, inMs, wait)
  }

  unwait(connection: PollConnection, delayMs: number): void {
    const wait = this.#waits.get(delayMs)
    if (!wait?.due.delete(connection) || wait.due.size > 0) return
    clearTimeout(wait.timer)
    this.#waits.delete(delayMs)
  }

  readonly #expire = (wait: PollWait): void => {
    wait.timer = undefined
    // Due by the timer, whatever the clock says (it may be faked, or have jumped back).
    const now = Math.max(Date.now() - CLOCK_ORIGIN, wait.timerDue)
    let next: number | undefined
    for (const [connection, due] of wait.due) {
      if (due > now) {
        next = due
        break
      }
      wait.due.delete(connection)
      connection.answer()
    }
    // An answer may have started a wait of this delay, and with it the timer.
    if (wait.timer !== undefined) return
    if (next !== undefined) this.#schedule(wait, next, next - now)
    else if (wait.due.size === 0 && this.#waits.get(wait.delayMs) === wait) this.#waits.delete(wait.delayMs)
  }

  /** The body of an answer carrying `frames` (their lines, `bytes` in all), shared with the previous answer when it carried the same. */
  body(frames: readonly OutFrame[], bytes: number): Buffer {
    const [only] = frames
    if (frames.length === 1 && only) return only.encoded(NDJSON_LINE)
    const last = this.#lastAnswer
    if (last && sameFrames(last.frames, frames)) return last.body
    const body = Buffer.concat(
      frames.map((frame) => frame.encoded(NDJSON_LINE)),
      bytes,
    )
    // Kept only for the answers of this turn (a round of polls answered together), not past it.
    if (!last) setImmediate(this.#forgetLastAnswer)
    this.#lastAnswer = { frames, body }
    return body
  }

  readonly #forgetLastAnswer = (): void => {
    this.#lastAnswer = undefined
  }

  /** Ends every wait (the server closes; the polls themselves are answered by the hub's shutdown). */
  close(): void {
    for (const wait of this.#waits.values()) clearTimeout(wait.timer)
    this.#waits.clear()
  }
}

/** The polls waiting the same time, and the one timer for the oldest of them. */
interface PollWait {
  readonly delayMs: number
  /** Each poll's deadline, oldest first (Map order is insertion order). */
  readonly due: Map<PollConnection, number>
  timer: ReturnType<typeof setTimeout> | undefined
  /** The deadline the timer was set for. */
  timerDue: number
}

const CLOCK_ORIGIN = Date.now()

function sameFrames(a: readonly OutFrame[], b: readonly OutFrame[]): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

export interface PollConnectionOptions {
  transport: 'long-polling' | 'short-polling'
  /** The poll's place in the connection limits, ended when its response closes. */
  place: PollPlace
}

/** The poll each response answers: one `close` listener serves every poll, so a held poll keeps no closure for it. */
const pollsByResponse = new WeakMap<ServerResponse, PollConnection>()

function onPollResponseClose(this: ServerResponse): void {
  pollsByResponse.get(this)?.gone()
}

/**
 * One poll request, as a connection that lives until it is answered: frames
 * the hub sends are collected, and the response goes out in one piece, as
 * NDJSON, once there is something (after a short coalescing wait) or when the
 * hold time is up. It keeps no closure or timer: one shared listener tells it
 * when its response closes ({@link gone}), and {@link PollRounds} when its wait is over.
 */
export class PollConnection extends Connection {
  readonly transport: 'long-polling' | 'short-polling'
  // protocol.md 3.5: a held poll answers within its hold time; a ping would only cut it short.
  override readonly wantsPing = false
  readonly #res: ServerResponse
  readonly #rounds: PollRounds
  readonly #place: PollPlace
  /** The answer's frames; made with the first, so a held poll without any holds no array. */
  #frames: OutFrame[] | undefined
  /** The answer's size in UTF-8 bytes, LFs included. */
  #bytes = 0
  /** The answer reached its size limit: the rest waits for the next poll. */
  #full = false
  #state: PollState = 'resolving'
  /** How long the poll's current wait in {@link PollRounds} is (the hold, then the coalescing window); 0 when not waiting. */
  #waitMs = 0

  /** Made as soon as the poll has a place, so that its response's closing ends the place from then on. */
  constructor(res: ServerResponse, scheduler: FlushScheduler, rounds: PollRounds, options: PollConnectionOptions) {
    // A session the server knows keeps its id (the server's string, not the request's); a first poll gets one.
    super(scheduler, options.place.session)
    this.transport = options.transport
    this.#res = res
    this.#rounds = rounds
    this.#place = options.place
    pollsByResponse.set(res, this)
    res.on('close', onPollResponseClose)
  }

  protected write(frames: readonly OutFrame[]): void {
    if (this.#state === 'answered') return
    for (const frame of frames) {
      // At a frame boundary, so each channel gets a prefix of its frames and
      // the client's next poll resumes exactly where this answer stops.
      if (this.#bytes >= this.#rounds.maxAnswerBytes) {
        this.#full = true
        break
      }
      ;(this.#frames ??= []).push(frame)
      this.#bytes += frame.encoded(NDJSON_LINE).length
    }
    if (this.#state !== 'holding' && this.#state !== 'coalescing') return
    if (this.#full) {
      this.answer()
    } else if (this.#state === 'holding' && this.#frames) {
      this.#state = 'coalescing'
      this.#wait(COALESCE_MS)
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
    if (this.#frames || holdMs <= 0) {
      this.answer()
      return
    }
    this.#state = 'holding'
    this.#wait(holdMs)
  }

  #wait(ms: number): void {
    if (this.#waitMs > 0) this.#rounds.unwait(this, this.#waitMs)
    this.#waitMs = ms
    this.#rounds.wait(this, ms)
  }

  /**
   * The response closed (answered, refused, or the client went away): the session's place
   * waits for its next poll, and a client that gives up mid-hold leaves nothing behind (no
   * wait, no subscriptions).
   */
  gone(): void {
    this.#place.end()
    this.answer()
  }

  /** Shutdown: the `close` frame is among the frames already. */
  protected end(): void {
    this.answer()
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
    this.answer()
    this.#res.destroy()
  }

  /** Sends what the poll has (204 when nothing) and leaves the hub; once. */
  answer(): void {
    if (this.#state === 'answered') return
    this.#state = 'answered'
    if (this.#waitMs > 0) this.#rounds.unwait(this, this.#waitMs)
    this.#rounds.release(this)
    const res = this.#res
    // Destroyed: the client went away (a response is destroyed before it emits `close`).
    if (res.headersSent || res.destroyed) return
    const frames = this.#frames
    if (!frames) {
      res.writeHead(204, { 'Cache-Control': 'no-store' })
      res.end()
      return
    }
    res.writeHead(200, {
      'Content-Type': 'application/x-ndjson; charset=utf-8',
      // Each line's UTF-8 length, counted as the frames came: no second pass over the body.
      'Content-Length': String(this.#bytes),
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
    })
    res.end(this.#rounds.body(frames, this.#bytes))
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
  readonly #rounds: PollRounds

  constructor(options: PollEndpointOptions) {
    this.#options = options
    // A poll never holds more than the slow-consumer limit either.
    this.#rounds = new PollRounds(options.hub, Math.min(MAX_ANSWER_BYTES, options.maxBufferedBytes))
  }

  close(): void {
    this.#options.sessions.close()
    this.#rounds.close()
  }

  async handle(req: IncomingMessage, res: ServerResponse, query: URLSearchParams): Promise<void> {
    if (!requireGet(req, res)) return
    const { hub, maxHoldMs, hello } = this.#options
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
    const connection = new PollConnection(res, hub.scheduler, this.#rounds, {
      transport,
      place,
    })
    const admitted = await admitStreamRequest(req, res, query, transport, this.#options, { charges: (channels) => place.charges(channels) })
    if (!admitted) return
    place.bind(connection.session)
    connection.identity = admitted.identity
    // What openHubConnection does, without its listener for `close`: the one above forgets the connection.
    hub.add(connection)
    // protocol.md 3.5: the first poll (no session) is a handshake: it gets hello
    // and a subscribed per entry; later polls continue the positions they carry.
    if (sessionParam === null) connection.send(hello(connection.session))
    await hub.subscribe(connection, cursorRequests(admitted.entries, sessionParam !== null))
    connection.hold(holdMs)
  }
}
