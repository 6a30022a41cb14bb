import { randomBytes } from 'node:crypto'
import { PushError } from '../../errors.js'
import type { Position } from '../../protocol/position.js'
import type { Broker, RecoverOptions, Recovery, StoredMessage } from './broker.js'

export interface MemoryBrokerOptions {
  /**
   * Messages kept per channel for resume; 0 keeps none.
   * @default 1000
   */
  historySize?: number
  /**
   * Age in ms after which a message leaves history.
   * @default 86_400_000 (24 h)
   */
  historyTtlMs?: number
  /**
   * How long in ms a channel with no subscribers and no history keeps its
   * record (epoch and offset) after its last use. Forgetting it frees the
   * memory of channels nobody uses; a client that comes back later sees an
   * `epoch-changed` gap, which is true: this process no longer knows the
   * channel's past.
   * @default 300_000 (5 min)
   */
  idleChannelTtlMs?: number
}

interface HistoryEntry {
  message: StoredMessage
  at: number
}

interface ChannelRecord {
  readonly epoch: string
  /** Offset of the newest message; 0 before the first. */
  offset: number
  /** History, oldest first, from `head`; slots before `head` are dropped entries awaiting compaction. */
  history: (HistoryEntry | undefined)[]
  head: number
  readonly listeners: Set<(message: StoredMessage) => void>
  touchedAt: number
}

/** Epochs are random so that a restarted process never reuses one. Base36 of 64 bits: 1..13 chars. */
function newEpoch(): string {
  return randomBytes(8).readBigUInt64BE().toString(36)
}

/**
 * History and fan-out for a single process. A restart loses history, and the
 * new epochs tell resuming clients so (`epoch-changed`).
 */
export class MemoryBroker implements Broker {
  readonly #historySize: number
  readonly #historyTtlMs: number
  readonly #idleChannelTtlMs: number
  readonly #channels = new Map<string, ChannelRecord>()
  #sweepTimer: ReturnType<typeof setInterval> | undefined
  #closed = false

  constructor(options: MemoryBrokerOptions = {}) {
    this.#historySize = Math.max(0, Math.floor(options.historySize ?? 1000))
    this.#historyTtlMs = options.historyTtlMs ?? 86_400_000
    this.#idleChannelTtlMs = options.idleChannelTtlMs ?? 300_000
  }

  publish(channel: string, event: string, data: unknown): Promise<StoredMessage> {
    if (this.#closed) return Promise.reject(closedError())
    const now = Date.now()
    const record = this.#record(channel, now)
    record.offset += 1
    const message: StoredMessage = { channel, event, data, epoch: record.epoch, offset: record.offset }
    if (this.#historySize > 0) {
      record.history.push({ message, at: now })
      if (record.history.length - record.head > this.#historySize) dropOldest(record)
    }
    this.#prune(record, now)
    for (const listener of record.listeners) {
      // One failing listener must not starve the others of this message.
      try {
        listener(message)
      } catch (error) {
        process.emitWarning(error instanceof Error ? error : new Error(String(error)))
      }
    }
    return Promise.resolve(message)
  }

  subscribe(channel: string, listener: (message: StoredMessage) => void): Promise<() => void> {
    if (this.#closed) return Promise.reject(closedError())
    const now = Date.now()
    const record = this.#record(channel, now)
    // A wrapper per call, so subscribing the same function twice needs two unsubscribes.
    const entry = (message: StoredMessage): void => listener(message)
    record.listeners.add(entry)
    return Promise.resolve(() => {
      record.listeners.delete(entry)
      record.touchedAt = Date.now()
    })
  }

  recover(channel: string, since: Position | undefined, options: RecoverOptions = {}): Promise<Recovery> {
    if (this.#closed) return Promise.reject(closedError())
    const now = Date.now()
    const record = this.#record(channel, now)
    this.#prune(record, now)
    const limit = options.limit === undefined ? Infinity : Math.max(1, Math.floor(options.limit))
    return Promise.resolve(recoverFrom(record, since, limit))
  }

  close(): Promise<void> {
    this.#closed = true
    clearInterval(this.#sweepTimer)
    this.#sweepTimer = undefined
    this.#channels.clear()
    return Promise.resolve()
  }

  #record(channel: string, now: number): ChannelRecord {
    let record = this.#channels.get(channel)
    if (!record) {
      record = { epoch: newEpoch(), offset: 0, history: [], head: 0, listeners: new Set(), touchedAt: now }
      this.#channels.set(channel, record)
      this.#sweepTimer ??= setInterval(this.#sweep, Math.min(this.#idleChannelTtlMs, 60_000)).unref()
    }
    record.touchedAt = now
    return record
  }

  #prune(record: ChannelRecord, now: number): void {
    const oldestAllowed = now - this.#historyTtlMs
    for (let entry = record.history[record.head]; entry && entry.at <= oldestAllowed; entry = record.history[record.head]) {
      dropOldest(record)
    }
  }

  /** Periodically drops expired history, and channel records nobody uses (else every channel name ever seen stays). */
  readonly #sweep = (): void => {
    const now = Date.now()
    for (const [channel, record] of this.#channels) {
      this.#prune(record, now)
      const idle = record.listeners.size === 0 && record.history.length === 0
      if (idle && now - record.touchedAt >= this.#idleChannelTtlMs) this.#channels.delete(channel)
    }
    if (this.#channels.size === 0) {
      clearInterval(this.#sweepTimer)
      this.#sweepTimer = undefined
    }
  }
}

function closedError(): PushError {
  return new PushError('SERVER_SHUTDOWN', 'broker closed')
}

/** Drops the oldest history entry; compacts when half the array is dead slots (amortised O(1)). */
function dropOldest(record: ChannelRecord): void {
  record.history[record.head] = undefined
  record.head += 1
  if (record.head === record.history.length) {
    record.history = []
    record.head = 0
  } else if (record.head >= 64 && record.head * 2 >= record.history.length) {
    record.history = record.history.slice(record.head)
    record.head = 0
  }
}

/** protocol.md section 4, with (E, N) the channel's position and H its oldest offset in history. */
function recoverFrom(record: ChannelRecord, since: Position | undefined, limit: number): Recovery {
  const { epoch, offset: newest } = record
  const oldest = record.history[record.head]?.message.offset ?? newest + 1
  // Rule 1: no `since`, live from now.
  if (!since) return { epoch, offset: newest, messages: [] }
  // Rule 4: another epoch: everything of this epoch still in history is new to the client.
  if (since.epoch !== epoch) {
    return { epoch, offset: oldest - 1, ...messagesFrom(record, oldest, limit), gap: 'epoch-changed' }
  }
  // Rule 3: the client claims messages this epoch never had.
  if (since.offset > newest) return { epoch, offset: newest, messages: [], gap: 'position-in-future' }
  // Rule 2: everything after `since` is still here...
  if (since.offset + 1 >= oldest) {
    return { epoch, offset: since.offset, ...messagesFrom(record, since.offset + 1, limit) }
  }
  // ... or its start has left history.
  return { epoch, offset: oldest - 1, ...messagesFrom(record, oldest, limit), gap: 'history-exhausted' }
}

/**
 * Up to `limit` messages from `offset` (which must be in history, or newest + 1), and whether
 * newer ones were left out (`more` only when true, so a full answer looks as it always did).
 */
function messagesFrom(
  record: ChannelRecord,
  offset: number,
  limit: number,
): { messages: StoredMessage[]; more?: true } {
  const first = record.history[record.head]
  if (!first) return { messages: [] }
  const start = record.head + (offset - first.message.offset)
  const end = Math.min(record.history.length, start + limit)
  const messages: StoredMessage[] = []
  for (let i = start; i < end; i++) {
    const entry = record.history[i]
    if (entry) messages.push(entry.message)
  }
  return end < record.history.length ? { messages, more: true } : { messages }
}
