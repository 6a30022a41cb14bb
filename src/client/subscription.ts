import type { Emitter, Unsubscribe } from 'nanoevents'
import type { PushError } from '../errors.js'
import type { GapReason, PresenceFrame, PresenceMemberInfo } from '../protocol/frames.js'
import type { StandardSchemaV1 } from '../protocol/standard-schema.js'

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

/** A member of a presence channel: a user (or an anonymous connection's session), since `joinedAt` (ms). */
export type PresenceMember = PresenceMemberInfo

/** What changed in a presence channel: the whole set (`sync`, after each subscribe), or one member (`join`, `leave`). */
export type PresenceChange = PresenceFrame

/** A message whose data its subscription's schema refused. */
export interface InvalidMessage {
  /** The message as it arrived, its data unchecked. */
  message: PushMessage<unknown>
  /** Why the schema refused it. */
  issues: ReadonlyArray<StandardSchemaV1.Issue>
}

export interface SubscriptionEvents<T = unknown> {
  /** A message; with a `schema`, only once its data passed, and with the schema's output as `data`. */
  message: (message: PushMessage<T>) => void
  /**
   * With a `schema`: a message whose data failed validation. It never reaches `message` listeners
   * nor async iteration; the subscription goes on with the next one.
   */
  invalid: (invalid: InvalidMessage) => void
  /**
   * The server confirmed the subscription (again after each reconnect); messages after `position`
   * (`<epoch>-<offset>`) follow.
   */
  subscribed: (info: { channel: string; position: string }) => void
  gap: (gap: GapInfo) => void
  /** The server refused something about this channel; after a refused subscribe the subscription ends. */
  error: (error: PushError) => void
  /** Who is subscribed changed, on a channel the server tracks presence for (protocol.md 2.4). */
  presence: (change: PresenceChange) => void
}

/** The client's side of a subscription's emitter; `end` is not public. */
export interface SubscriptionEmitterEvents extends SubscriptionEvents {
  end: (error?: PushError) => void
}

export type SubscriptionEmitter = Emitter<SubscriptionEmitterEvents>

/**
 * One `client.subscribe()` call. Several of them on one channel share one server subscription.
 * Iterate it with `for await` to consume messages in order; breaking out unsubscribes.
 */
export interface Subscription<T = unknown> extends AsyncIterable<PushMessage<T>> {
  /** The channel name. */
  readonly channel: string
  /** False once unsubscribed, or after the server refused the subscription. */
  readonly active: boolean
  /**
   * Who is subscribed to the channel, in order of joining, as the server last said: on a channel
   * the server tracks presence for, once subscribed; else empty.
   */
  presence(): PresenceMember[]
  /** Adds a listener; returns the function that removes it. */
  on<K extends keyof SubscriptionEvents<T>>(event: K, listener: SubscriptionEvents<T>[K]): Unsubscribe
  /** Stops this subscription; the last one of a channel ends the server subscription. Idempotent. */
  unsubscribe(): void
  [Symbol.asyncIterator](): AsyncIterator<PushMessage<T>, void>
}

/** Creates the `Subscription` of a `client.subscribe()` call; `release` ends it in the client. */
export function createSubscription<T>(
  channel: string,
  events: Emitter<SubscriptionEmitterEvents>,
  release: () => void,
  members: () => PresenceMember[],
): Subscription<T> {
  let ended = false
  events.on('end', () => {
    ended = true
  })
  const subscription: Subscription<T> = {
    channel,
    get active() {
      return !ended
    },
    presence: members,
    on: (event, listener) => events.on(event, listener as SubscriptionEmitterEvents[typeof event]),
    unsubscribe() {
      if (!ended) release()
    },
    // Buffers what arrives while the consumer is busy; `for await` starts it at once.
    async *[Symbol.asyncIterator]() {
      const queue: PushMessage<T>[] = []
      let wake: (() => void) | undefined
      let done = ended
      let failure: PushError | undefined
      const unbind = [
        events.on('message', (message) => {
          queue.push(message as PushMessage<T>)
          wake?.()
        }),
        events.on('end', (error) => {
          done = true
          failure = error
          wake?.()
        }),
      ]
      try {
        for (;;) {
          while (queue.length) yield queue.shift() as PushMessage<T>
          if (done) break
          await new Promise<void>((resolve) => (wake = resolve))
        }
        if (failure) throw failure
      } finally {
        // Also when the loop breaks out: the subscription ends with it.
        for (const off of unbind) off()
        subscription.unsubscribe()
      }
    },
  }
  return subscription
}
