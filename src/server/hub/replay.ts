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
 * Message frames by channel, epoch and offset, most recently used last, so
 * that a message several connections replay (everyone resuming after a
 * restart or a deploy) is serialized and encoded once, like a live message,
 * instead of once per connection. Bounded by the size of what it holds.
 */
export class MessageFrameCache {
  readonly #maxBytes: number
  readonly #frames = new Map<string, { frame: OutFrame; bytes: number }>()
  #bytes = 0

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes
  }

  /** Entries held (for tests). */
  get size(): number {
    return this.#frames.size
  }

  /** The cached frame of `message`, or the one `build` makes (cached unless null). */
  frameOf(message: StoredMessage, build: (message: StoredMessage) => OutFrame | null): OutFrame | null {
    const key = cacheKey(message)
    const cached = this.#frames.get(key)
    if (cached) {
      // Most recently used goes last: Map order is the eviction order.
      this.#frames.delete(key)
      this.#frames.set(key, cached)
      return cached.frame
    }
    const frame = build(message)
    if (frame) this.#put(key, frame)
    return frame
  }

  clear(): void {
    this.#frames.clear()
    this.#bytes = 0
  }

  #put(key: string, frame: OutFrame): void {
    const bytes = (frame.json.length + key.length) * CACHED_FRAME_WEIGHT
    // A frame larger than the whole cache would only evict everything else.
    if (bytes > this.#maxBytes) return
    this.#frames.set(key, { frame, bytes })
    this.#bytes += bytes
    for (const [oldest, entry] of this.#frames) {
      if (this.#bytes <= this.#maxBytes) break
      this.#frames.delete(oldest)
      this.#bytes -= entry.bytes
    }
  }
}

function cacheKey(message: StoredMessage): string {
  // Epochs never contain `-` or a space; channel names never contain a space.
  return `${message.epoch}-${message.offset} ${message.channel}`
}
