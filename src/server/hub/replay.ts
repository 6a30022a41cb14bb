import type { StoredMessage } from '../brokers/broker.js'
import type { OutFrame } from './out-frame.js'

/**
 * Messages the hub fetches from history per broker call when replaying. A
 * page is references to the broker's messages; the frames built from it go
 * out one at a time, each only while the connection has room.
 */
export const REPLAY_PAGE_MESSAGES = 64

/**
 * Live messages kept for a subscription while its replay runs (they go out
 * after it). Past this the backlog is dropped and the replay instead fetches
 * them from history when it gets there: a connection that reads slowly holds
 * no more than this per channel, and loses nothing.
 */
export const REPLAY_BACKLOG_MESSAGES = 256

/**
 * What the hub's {@link MessageFrameCache} may hold, weighed as below: about
 * 2 MiB of JSON with its encodings.
 */
export const MESSAGE_FRAME_CACHE_BYTES = 8 * 1024 * 1024

/** A wire encoding can be a few times the JSON's size; what a cached frame is assumed to hold per JSON character. */
const CACHED_FRAME_WEIGHT = 4

/**
 * Message frames by channel, epoch and offset, so that a message several
 * connections replay (everyone resuming after a restart or a deploy, every
 * poll continuing its position) is serialized and encoded once, like a live
 * message, instead of once per connection. Bounded by the size of what it
 * holds. A hit is on the fan-out and replay paths, once per message per
 * connection for polls, so it is kept cheap: no key string is made (frames
 * are found by channel, then by offset, a small integer), and eviction is
 * "second chance" rather than strict LRU: a hit only marks the frame used,
 * and eviction passes over a used frame once (moving it to the back)
 * instead of every hit moving it.
 */
export class MessageFrameCache {
  readonly #maxBytes: number
  /** Frames by channel, then by offset. */
  readonly #channels = new Map<string, Map<number, CachedFrame>>()
  /** Every cached frame, oldest first (Set order is insertion order): the eviction order. */
  readonly #order = new Set<CachedFrame>()
  #bytes = 0

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes
  }

  /** Entries held (for tests). */
  get size(): number {
    return this.#order.size
  }

  /** The cached frame of `message`, or the one `build` makes (cached unless null). */
  frameOf(message: StoredMessage, build: (message: StoredMessage) => OutFrame | null): OutFrame | null {
    const cached = this.#channels.get(message.channel)?.get(message.offset)
    if (cached && cached.epoch === message.epoch) {
      cached.used = true
      return cached.frame
    }
    const frame = build(message)
    if (frame) this.#put(message, frame)
    return frame
  }

  clear(): void {
    this.#channels.clear()
    this.#order.clear()
    this.#bytes = 0
  }

  #put(message: StoredMessage, frame: OutFrame): void {
    const { channel, epoch, offset } = message
    const bytes = (frame.json.length + channel.length + epoch.length) * CACHED_FRAME_WEIGHT
    // A frame larger than the whole cache would only evict everything else.
    if (bytes > this.#maxBytes) return
    let frames = this.#channels.get(channel)
    if (!frames) {
      frames = new Map()
      this.#channels.set(channel, frames)
    }
    // Another epoch's frame at this offset (the channel's history was reset).
    const replaced = frames.get(offset)
    if (replaced) this.#forget(replaced)
    const entry: CachedFrame = { frame, bytes, channel, epoch, offset, used: false }
    frames.set(offset, entry)
    this.#order.add(entry)
    this.#bytes += bytes
    for (const oldest of this.#order) {
      if (this.#bytes <= this.#maxBytes) break
      // The frame just made stays: it is the likeliest to be asked for next (a replay of a recent message).
      if (oldest === entry) continue
      if (oldest.used) {
        // Its second chance: to the back, unmarked; it goes next time round unless hit again.
        oldest.used = false
        this.#order.delete(oldest)
        this.#order.add(oldest)
      } else {
        this.#forget(oldest)
      }
    }
  }

  #forget(entry: CachedFrame): void {
    this.#order.delete(entry)
    this.#bytes -= entry.bytes
    const frames = this.#channels.get(entry.channel)
    if (frames?.get(entry.offset) !== entry) return
    frames.delete(entry.offset)
    if (frames.size === 0) this.#channels.delete(entry.channel)
  }
}

interface CachedFrame {
  readonly frame: OutFrame
  /** Its weight against the cache's size. */
  readonly bytes: number
  readonly channel: string
  readonly epoch: string
  readonly offset: number
  /** Hit since it was cached or last passed over by eviction. */
  used: boolean
}
