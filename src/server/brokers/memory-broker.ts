import { createHash, randomBytes } from 'node:crypto'
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
   * How long in ms a published channel with no subscribers and no history left
   * keeps its record (epoch and offset) after its last use. Forgetting it frees
   * the memory of channels nobody uses; a client that comes back later sees an
   * `epoch-changed` gap, which is true: this process no longer knows the
   * channel's past. A channel never published to keeps no record once its last
   * subscriber has gone, whatever this says.
   * @default 300_000 (5 min)
   */
  idleChannelTtlMs?: number
  /**
   * Total size of history over all channels, in bytes (each message weighed as
   * its data's JSON length plus its channel and event names and 64 bytes).
   * Past it the oldest messages of the channels idle the longest leave history
   * first; a client resuming before them gets a `history-exhausted` gap.
   * @default 67_108_864 (64 MiB)
   */
  maxHistoryBytes?: number
  /**
   * Channel records kept. Past it the record of the channel idle the longest
   * that has no subscriber is forgotten, history and all; its next subscriber
   * gets an `epoch-changed` gap. Channels with subscribers are never forgotten,
   * so their count may pass this.
   * @default 100_000
   */
  maxChannels?: number
}

interface HistoryEntry {
  message: StoredMessage
  at: number
  /** The message's weight against maxHistoryBytes. */
  bytes: number
}

interface ChannelRecord {
  readonly name: string
  readonly epoch: string
  /** Offset of the newest message; 0 before the first. */
  offset: number
  /** History, oldest first, from `head`; slots before `head` are dropped entries awaiting compaction. */
  history: (HistoryEntry | undefined)[]
  head: number
  readonly listeners: Set<(message: StoredMessage) => void>
  touchedAt: number
}

/** What a message weighs besides its data, channel and event. */
const MESSAGE_OVERHEAD_BYTES = 64

/**
 * History and fan-out for a single process. A restart loses history, and the
 * new epochs tell resuming clients so (`epoch-changed`).
 *
 * A channel's epoch is derived from its name and a random seed, not stored
 * apart: so a channel never published to can be forgotten the moment its last
 * subscriber leaves and come back with the same epoch (nothing was lost, and a
 * client holding `epoch-0` sees no gap). When a channel that had messages is
 * forgotten the seed changes, so no channel ever gets an epoch back whose
 * offsets it has already used.
 */
export class MemoryBroker implements Broker {
  readonly #historySize: number
  readonly #historyTtlMs: number
  readonly #idleChannelTtlMs: number
  readonly #maxHistoryBytes: number
  readonly #maxChannels: number
  /** Records by channel, the least recently used first (a use moves a record to the end). */
  readonly #channels = new Map<string, ChannelRecord>()
  /** The records that have history, in the same order: what maxHistoryBytes evicts from. */
  readonly #withHistory = new Set<ChannelRecord>()
  #epochSeed = randomBytes(16)
  #historyBytes = 0
  #historyMessages = 0
  #sweepTimer: ReturnType<typeof setInterval> | undefined
  #closed = false

  constructor(options: MemoryBrokerOptions = {}) {
    this.#historySize = Math.max(0, Math.floor(options.historySize ?? 1000))
    this.#historyTtlMs = options.historyTtlMs ?? 86_400_000
    this.#idleChannelTtlMs = options.idleChannelTtlMs ?? 300_000
    this.#maxHistoryBytes = options.maxHistoryBytes ?? 64 * 1024 * 1024
    this.#maxChannels = Math.max(1, Math.floor(options.maxChannels ?? 100_000))
  }

  /** What this broker holds: channel records, and messages in history with their weight in bytes. */
  stats(): { channels: number; historyMessages: number; historyBytes: number } {
    return { channels: this.#channels.size, historyMessages: this.#historyMessages, historyBytes: this.#historyBytes }
  }

  publish(channel: string, event: string, data: unknown): Promise<StoredMessage> {
    if (this.#closed) return Promise.reject(closedError())
    const now = Date.now()
    const record = this.#record(channel, now)
    record.offset += 1
    const message: StoredMessage = { channel, event, data, epoch: record.epoch, offset: record.offset }
    if (this.#historySize > 0) {
      const bytes = weigh(message)
      record.history.push({ message, at: now, bytes })
      this.#withHistory.add(record)
      this.#historyBytes += bytes
      this.#historyMessages += 1
      if (record.history.length - record.head > this.#historySize) this.#dropOldest(record)
    }
    this.#prune(record, now)
    this.#keepHistoryBudget(record)
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
      if (!record.listeners.delete(entry)) return
      record.touchedAt = Date.now()
      // Never published: nothing to remember, and the same epoch comes back with the name.
      if (record.listeners.size === 0 && record.offset === 0) this.#forget(record)
    })
  }

  recover(channel: string, since: Position | undefined, options: RecoverOptions = {}): Promise<Recovery> {
    if (this.#closed) return Promise.reject(closedError())
    const now = Date.now()
    const limit = options.limit === undefined ? Infinity : Math.max(1, Math.floor(options.limit))
    const existing = this.#channels.get(channel)
    // A channel nobody has published to or subscribes: answered without keeping a record for it.
    const record = existing ?? this.#newRecord(channel, now)
    if (existing) {
      this.#touch(record, now)
      this.#prune(record, now)
    }
    return Promise.resolve(recoverFrom(record, since, limit))
  }

  close(): Promise<void> {
    this.#closed = true
    clearInterval(this.#sweepTimer)
    this.#sweepTimer = undefined
    this.#channels.clear()
    this.#withHistory.clear()
    this.#historyBytes = 0
    this.#historyMessages = 0
    return Promise.resolve()
  }

  #newRecord(channel: string, now: number): ChannelRecord {
    const epoch = epochOf(this.#epochSeed, channel)
    return { name: channel, epoch, offset: 0, history: [], head: 0, listeners: new Set(), touchedAt: now }
  }

  #record(channel: string, now: number): ChannelRecord {
    const existing = this.#channels.get(channel)
    if (existing) {
      this.#touch(existing, now)
      return existing
    }
    if (this.#channels.size >= this.#maxChannels) this.#evictChannel()
    const record = this.#newRecord(channel, now)
    this.#channels.set(channel, record)
    this.#sweepTimer ??= setInterval(this.#sweep, Math.min(this.#idleChannelTtlMs, 60_000)).unref()
    return record
  }

  /** Marks a use: the record goes to the end of the eviction order. */
  #touch(record: ChannelRecord, now: number): void {
    record.touchedAt = now
    this.#channels.delete(record.name)
    this.#channels.set(record.name, record)
    if (this.#withHistory.delete(record)) this.#withHistory.add(record)
  }

  /** Forgets a record (history too); the seed changes if the channel had messages, so its epoch never returns. */
  #forget(record: ChannelRecord): void {
    if (this.#channels.get(record.name) !== record) return
    this.#channels.delete(record.name)
    while (record.history[record.head]) this.#dropOldest(record)
    if (record.offset > 0) this.#epochSeed = randomBytes(16)
  }

  /** maxChannels: forgets the least recently used record without subscribers. */
  #evictChannel(): void {
    for (const record of this.#channels.values()) {
      if (record.listeners.size === 0) {
        this.#forget(record)
        return
      }
    }
  }

  /**
   * maxHistoryBytes: drops the oldest messages of the least recently used
   * channels until history fits, sparing `current` (just published to) as long as others have history.
   */
  #keepHistoryBudget(current: ChannelRecord): void {
    if (this.#historyBytes <= this.#maxHistoryBytes) return
    for (const record of this.#withHistory) {
      if (record === current) continue
      while (record.history[record.head] && this.#historyBytes > this.#maxHistoryBytes) this.#dropOldest(record)
      if (this.#historyBytes <= this.#maxHistoryBytes) return
    }
    while (current.history[current.head] && this.#historyBytes > this.#maxHistoryBytes) this.#dropOldest(current)
  }

  #prune(record: ChannelRecord, now: number): void {
    const oldestAllowed = now - this.#historyTtlMs
    for (let entry = record.history[record.head]; entry && entry.at <= oldestAllowed; entry = record.history[record.head]) {
      this.#dropOldest(record)
    }
  }

  /** Drops the oldest history entry; compacts when half the array is dead slots (amortised O(1)). */
  #dropOldest(record: ChannelRecord): void {
    const entry = record.history[record.head]
    if (!entry) return
    this.#historyBytes -= entry.bytes
    this.#historyMessages -= 1
    record.history[record.head] = undefined
    record.head += 1
    if (record.head === record.history.length) {
      record.history = []
      record.head = 0
      this.#withHistory.delete(record)
    } else if (record.head >= 64 && record.head * 2 >= record.history.length) {
      record.history = record.history.slice(record.head)
      record.head = 0
    }
  }

  /** Periodically drops expired history, and channel records nobody uses (else every channel name ever seen stays). */
  readonly #sweep = (): void => {
    const now = Date.now()
    for (const record of [...this.#channels.values()]) {
      this.#prune(record, now)
      if (record.listeners.size > 0 || record.history[record.head]) continue
      if (record.offset === 0 || now - record.touchedAt >= this.#idleChannelTtlMs) this.#forget(record)
    }
    if (this.#channels.size === 0) {
      clearInterval(this.#sweepTimer)
      this.#sweepTimer = undefined
    }
  }
}

/** A channel's epoch under `seed`: base36 of 64 bits of a hash, 1..13 characters. */
function epochOf(seed: Buffer, channel: string): string {
  return createHash('sha256').update(seed).update(channel).digest().readBigUInt64BE().toString(36)
}

/** A message's weight against maxHistoryBytes: roughly its size as a frame. */
function weigh(message: StoredMessage): number {
  let data = 0
  try {
    data = JSON.stringify(message.data)?.length ?? 0
  } catch {
    // Unserializable data is the hub's problem (it sends a gap); it weighs only the overhead here.
  }
  return data + message.channel.length + message.event.length + MESSAGE_OVERHEAD_BYTES
}

function closedError(): PushError {
  return new PushError('SERVER_SHUTDOWN', 'broker closed')
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
