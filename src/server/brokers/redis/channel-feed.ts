import type { StoredMessage } from '../broker.js'

/** A read of one channel's history: its position now, and the requested stored messages. */
export interface HistoryRead {
  /** The channel's epoch; undefined when Redis holds nothing for it. */
  epoch: string | undefined
  /** Offset of its newest message. */
  newest: number
  /** Messages in the requested range that are still in history, oldest first. */
  messages: StoredMessage[]
}

/** Reads offsets `from`..`to` (`'+'`: to the newest). Rejects when Redis cannot be reached. */
export type ReadHistory = (from: number, to: number | '+') => Promise<HistoryRead>

export interface ChannelFeedOptions {
  read: ReadHistory
  /** Waits before retrying a read that failed (attempt counts from 1); a pure function of the attempt. */
  retryDelayMs: (attempt: number) => number
  /** Receives a listener's exception (one failing listener must not starve the others). */
  onListenerError: (error: unknown) => void
}

/**
 * One channel's delivery on one node: turns the notifications Redis sends
 * (which a dropped connection can lose) into a gap-free, in-order sequence.
 * A notification that does not follow the last delivered message, and every
 * reconnect of the subscriber connection, first fill the hole from the stream.
 * Steps run one at a time, so nothing newer overtakes a fill in progress.
 */
export class ChannelFeed {
  readonly listeners = new Set<(message: StoredMessage) => void>()
  readonly #options: ChannelFeedOptions
  /** Position of the last delivered message, or what the channel had when the feed started. */
  #epoch: string | undefined
  #offset = 0
  /** The step running now and those queued behind it; the first is the start. */
  #steps: Promise<void>
  #started!: () => void
  /** Steps queued or running, the start included: while any is, notifications wait their turn. */
  #queued = 1
  #closed = false

  constructor(options: ChannelFeedOptions) {
    this.#options = options
    // Notifications can come before start() (right after SUBSCRIBE): they wait for the position.
    this.#steps = new Promise((resolve) => (this.#started = resolve))
  }

  /**
   * Reads where the channel stands; notifications queued meanwhile wait for it.
   * Rejects (and the feed is useless) when Redis cannot be reached.
   */
  start(): Promise<void> {
    const started = this.#options.read(1, 0).then((position) => {
      this.#epoch = position.epoch
      this.#offset = position.newest
    })
    void started
      .catch(() => {})
      .finally(() => {
        this.#queued--
        this.#started()
      })
    return started
  }

  /** A message Redis announced: delivered after everything before it. */
  notify(message: StoredMessage): void {
    // The common case, the next message with nothing queued, goes out now rather than a turn later.
    if (this.#queued === 0 && message.epoch === this.#epoch && message.offset === this.#offset + 1) {
      this.#deliver(message)
      return
    }
    this.#enqueue(() => this.#receive(message))
  }

  /** The subscriber connection was down: deliver what was published meanwhile. */
  catchUp(): void {
    this.#enqueue(() => this.#catchUp())
  }

  /** Stops delivery and ends retries. */
  close(): void {
    this.#closed = true
    this.listeners.clear()
  }

  #enqueue(step: () => Promise<void>): void {
    if (this.#closed) return
    this.#queued++
    // Steps never reject: reads retry until they succeed or the feed closes.
    this.#steps = this.#steps.then(step).finally(() => this.#queued--)
  }

  async #receive(message: StoredMessage): Promise<void> {
    if (message.epoch === this.#epoch) {
      if (message.offset <= this.#offset) return
      if (message.offset > this.#offset + 1) await this.#fill(message.epoch, this.#offset + 1, message.offset - 1)
    } else if (message.offset > 1) {
      // A new epoch (history lost and restarted): its earlier messages are new to everyone here.
      await this.#fill(message.epoch, 1, message.offset - 1)
    }
    this.#deliver(message)
  }

  async #catchUp(): Promise<void> {
    const epoch = this.#epoch
    const after = await this.#readUntilDone(epoch === undefined ? 1 : this.#offset + 1, '+')
    if (!after || after.epoch === undefined) return
    if (after.epoch === epoch) {
      for (const message of after.messages) this.#deliver(message)
      return
    }
    // Redis lost the channel while we were away and a new epoch began: all of it is new.
    const all = await this.#readUntilDone(1, '+')
    if (!all || all.epoch === undefined) return
    for (const message of all.messages) this.#deliver(message)
  }

  /** Delivers stored messages `from`..`to` of `epoch`; nothing if the channel has moved to another epoch. */
  async #fill(epoch: string, from: number, to: number): Promise<void> {
    const read = await this.#readUntilDone(from, to)
    if (read?.epoch !== epoch) return
    // Messages that left history stay missing: the hub announces the jump as a gap.
    for (const message of read.messages) this.#deliver(message)
  }

  /** The read, retried after failures; undefined if the feed closed first. */
  async #readUntilDone(from: number, to: number | '+'): Promise<HistoryRead | undefined> {
    for (let attempt = 1; !this.#closed; attempt++) {
      try {
        return await this.#options.read(from, to)
      } catch {
        // Redis is away (the broker logs the outage); the messages are in the stream, so wait for it.
        await new Promise((resolve) => setTimeout(resolve, this.#options.retryDelayMs(attempt)))
      }
    }
    return undefined
  }

  #deliver(message: StoredMessage): void {
    if (this.#closed) return
    if (message.epoch === this.#epoch && message.offset <= this.#offset) return
    this.#epoch = message.epoch
    this.#offset = message.offset
    for (const listener of this.listeners) {
      try {
        listener(message)
      } catch (error) {
        this.#options.onListenerError(error)
      }
    }
  }
}
