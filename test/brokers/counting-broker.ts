import type { Position } from '../../src/protocol/position.js'
import { MemoryBroker } from '../../src/server/index.js'
import type { Broker, RecoverOptions, Recovery, StoredMessage } from '../../src/server/index.js'

/** A MemoryBroker that counts the subscriptions made to it and those still active. */
export class CountingBroker implements Broker {
  readonly inner: Broker
  /** Calls of subscribe so far. */
  subscribes = 0
  /** Subscriptions not yet stopped. */
  active = 0

  constructor(inner: Broker = new MemoryBroker()) {
    this.inner = inner
  }

  publish(channel: string, event: string, data: unknown): Promise<StoredMessage> {
    return this.inner.publish(channel, event, data)
  }

  async subscribe(channel: string, listener: (message: StoredMessage) => void): Promise<() => void> {
    this.subscribes++
    const stop = await this.inner.subscribe(channel, listener)
    this.active++
    // No guard against a second call: a double stop shows as a negative count.
    return () => {
      this.active--
      stop()
    }
  }

  recover(channel: string, since: Position | undefined, options?: RecoverOptions): Promise<Recovery> {
    return this.inner.recover(channel, since, options)
  }

  close(): Promise<void> {
    return this.inner.close()
  }
}
