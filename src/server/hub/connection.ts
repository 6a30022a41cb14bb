import { randomBytes } from 'node:crypto'
import type { TransportName } from '../../protocol/frames.js'
import type { Identity } from '../options.js'
import type { OutFrame } from './out-frame.js'

/**
 * Collects the connections that got frames during this event-loop turn and
 * flushes them together in one `setImmediate`: one write per connection per
 * turn however many messages fan out to it, and no timer per connection.
 */
export class FlushScheduler {
  #dirty = new Set<Connection>()
  #scheduled = false
  readonly #afterFlush: (connection: Connection) => void

  /** `afterFlush` runs after each connection's write (the hub checks its backlog there). */
  constructor(afterFlush: (connection: Connection) => void) {
    this.#afterFlush = afterFlush
  }

  mark(connection: Connection): void {
    this.#dirty.add(connection)
    if (this.#scheduled) return
    this.#scheduled = true
    setImmediate(this.#run)
  }

  forget(connection: Connection): void {
    this.#dirty.delete(connection)
  }

  readonly #run = (): void => {
    this.#scheduled = false
    const dirty = this.#dirty
    this.#dirty = new Set()
    for (const connection of dirty) {
      connection.flush()
      this.#afterFlush(connection)
    }
  }
}

type ConnectionState = 'open' | 'closing' | 'closed'

/** A new session id: opaque, and random so it can't be guessed. */
export function newSession(): string {
  return randomBytes(12).toString('base64url')
}

/**
 * One client stream, whatever carries it: a WebSocket, an SSE or iframe
 * response, a held poll. The hub only queues frames on it; the transport
 * decides how a batch is encoded and written.
 */
export abstract class Connection {
  /** Opaque id sent in `hello` and passed to hooks. */
  readonly session: string
  abstract readonly transport: TransportName
  /**
   * Whether the hub's heartbeat sends `ping` here. A poll answers within its
   * hold time anyway, and a ping would only end it early.
   */
  readonly wantsPing: boolean = true
  /** Who the client is, as `authenticate` found it; undefined when anonymous. Set before the hub adds it. */
  identity: Identity | undefined
  #state: ConnectionState = 'open'
  /** Frames for this turn's flush; undefined between flushes, so an idle connection holds no array. */
  #pending: OutFrame[] | undefined
  /** JSON characters of `#pending`: what this turn's flush is about to write. */
  #pendingBytes = 0
  /**
   * Set by the hub while a replay waits for room: the transport calls it (through
   * {@link drained}) when its written output has been taken by the client.
   */
  onDrain: ((connection: Connection) => void) | undefined
  readonly #scheduler: FlushScheduler
  /** Made when first asked for (at shutdown): an idle connection holds no promise for it. */
  #done: Promise<void> | undefined
  #resolveDone: (() => void) | undefined

  /** `session` defaults to a new one; a poll passes the one its client already has. */
  constructor(scheduler: FlushScheduler, session: string = newSession()) {
    this.#scheduler = scheduler
    this.session = session
  }

  /** Resolves once the hub has dropped the connection. */
  get done(): Promise<void> {
    if (this.#state === 'closed') return Promise.resolve()
    return (this.#done ??= new Promise((resolve) => {
      this.#resolveDone = resolve
    }))
  }

  /** True until shutdown starts or the hub drops the connection. */
  get isOpen(): boolean {
    return this.#state === 'open'
  }

  /** Queues a frame for this turn's flush. Frames sent after close are dropped. */
  send(frame: OutFrame): void {
    if (this.#state !== 'open') return
    this.#pendingBytes += frame.json.length
    if (this.#pending) {
      this.#pending.push(frame)
      return
    }
    this.#pending = [frame]
    this.#scheduler.mark(this)
  }

  /**
   * Writes `frames` at once when nothing waits for this turn's flush (else queues them, keeping
   * order). For the heartbeat: a round touches every connection, and a frame that batches with
   * nothing is cheaper written now than scheduled (no set entry, no batch array, no second pass).
   */
  sendAlone(frames: readonly OutFrame[]): void {
    if (this.#state !== 'open') return
    if (this.#pending) for (const frame of frames) this.send(frame)
    else this.write(frames)
  }

  /**
   * Output queued or written but not yet taken by the client, in bytes: what the
   * hub weighs against `maxBufferedBytes` before it builds another replayed frame.
   */
  outputBytes(): number {
    return this.#pendingBytes + this.bufferedBytes()
  }

  /** Transports call this when their written output has drained. */
  protected drained(): void {
    this.onDrain?.(this)
  }

  /** Writes the frames queued so far as one batch. */
  flush(): void {
    const frames = this.#pending
    if (frames === undefined || this.#state === 'closed') return
    this.#pending = undefined
    this.#pendingBytes = 0
    this.write(frames)
  }

  /** Writes what is queued plus `close`, then closes gracefully. The hub waits on {@link done}. */
  shutdown(close: OutFrame): void {
    if (this.#state !== 'open') return
    this.#state = 'closing'
    this.#scheduler.forget(this)
    ;(this.#pending ??= []).push(close)
    this.flush()
    this.end(close)
  }

  /** Called by the hub only, when it forgets the connection. */
  markClosed(): void {
    if (this.#state === 'closed') return
    this.#state = 'closed'
    this.#pending = undefined
    this.#pendingBytes = 0
    this.onDrain = undefined
    this.#scheduler.forget(this)
    this.#resolveDone?.()
  }

  /** Encodes and writes one batch of frames, in order. */
  protected abstract write(frames: readonly OutFrame[]): void
  /** Closes after the data written so far, for shutdown. */
  protected abstract end(close: OutFrame): void
  /** Bytes written but not yet handed to the kernel (the slow-consumer measure). */
  abstract bufferedBytes(): number
  /** False when the transport's liveness deadline has passed at `now`. */
  abstract isResponsive(now: number, deadlineMs: number): boolean
  /** Drops the connection at once, without goodbye. */
  abstract terminate(): void
}
