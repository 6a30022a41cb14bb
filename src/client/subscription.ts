import type { Emitter, Unsubscribe } from 'nanoevents'
import type { PushError } from '../errors.js'
import type { GapReason } from '../protocol/frames.js'

/** One message of a channel, as the application sees it. */
export interface PushMessage<T = unknown> {
  channel: string
  event: string
  data: T
  offset: number
  /** Message id `<epoch>-<offset>`. */
  id: string
}

/** Messages that were lost between two positions (protocol.md 4.1); delivery continues after `to`. */
export interface GapInfo {
  channel: string
  reason: GapReason
  /** The last message id the client had, if it had one. */
  from?: string
  /** The position delivery continues after. */
  to: string
}

export interface SubscriptionEvents<T = unknown> {
  message: (message: PushMessage<T>) => void
  /**
   * The server confirmed the subscription (again after each reconnect); messages after `position`
   * (`<epoch>-<offset>`) follow.
   */
  subscribed: (info: { channel: string; position: string }) => void
  gap: (gap: GapInfo) => void
  /** The server refused something about this channel; after a refused subscribe the subscription ends. */
  error: (error: PushError) => void
}

/** The client's side of a subscription's emitter; `end` is not public. */
export interface SubscriptionEmitterEvents extends SubscriptionEvents {
  end: (error?: PushError) => void
}

/**
 * One `client.subscribe()` call. Several of them on one channel share one server subscription.
 * Iterate it with `for await` to consume messages in order; breaking out unsubscribes.
 */
export class Subscription<T = unknown> implements AsyncIterable<PushMessage<T>> {
  /** The channel name. */
  readonly channel: string
  readonly #events: Emitter<SubscriptionEmitterEvents>
  readonly #release: () => void
  #ended = false

  /** @internal Created by `PushClient.subscribe`. */
  constructor(channel: string, events: Emitter<SubscriptionEmitterEvents>, release: () => void) {
    this.channel = channel
    this.#events = events
    this.#release = release
    events.on('end', () => {
      this.#ended = true
    })
  }

  /** False once unsubscribed, or after the server refused the subscription. */
  get active(): boolean {
    return !this.#ended
  }

  /** Adds a listener; returns the function that removes it. */
  on<K extends keyof SubscriptionEvents<T>>(event: K, listener: SubscriptionEvents<T>[K]): Unsubscribe {
    return this.#events.on(event, listener as SubscriptionEmitterEvents[K])
  }

  /** Stops this subscription; the last one of a channel ends the server subscription. Idempotent. */
  unsubscribe(): void {
    if (!this.#ended) this.#release()
  }

  [Symbol.asyncIterator](): AsyncIterator<PushMessage<T>, undefined> {
    // Buffers what arrives while the consumer is busy; start iterating right after subscribe().
    const queue: PushMessage<T>[] = []
    let wake: (() => void) | undefined
    let ended = this.#ended
    let failure: PushError | undefined
    const unbind = [
      this.#events.on('message', (message) => {
        queue.push(message as PushMessage<T>)
        wake?.()
      }),
      this.#events.on('end', (error) => {
        ended = true
        failure = error
        wake?.()
      }),
    ]
    const finish = (): IteratorReturnResult<undefined> => {
      for (const off of unbind) off()
      return { value: undefined, done: true }
    }
    return {
      next: async () => {
        while (!queue.length && !ended) await new Promise<void>((resolve) => (wake = resolve))
        const message = queue.shift()
        if (message) return { value: message, done: false }
        finish()
        if (failure) throw failure
        return { value: undefined, done: true }
      },
      return: async () => {
        this.unsubscribe()
        return finish()
      },
    }
  }
}
