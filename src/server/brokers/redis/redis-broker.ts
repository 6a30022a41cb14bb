import { randomBytes } from 'node:crypto'
import { createClient } from '@redis/client'
import { PushError } from '../../../errors.js'
import type { Position } from '../../../protocol/position.js'
import type { Broker, BrokerPresence, RecoverOptions, Recovery, StoredMessage } from '../broker.js'
import { ChannelFeed, type HistoryRead } from './channel-feed.js'
import { channelKeys, type ChannelKeys } from './keys.js'
import { RedisPresence } from './redis-presence.js'
import { PUBLISH_SCRIPT, READ_SCRIPT, RECOVER_SCRIPT, type LuaScript } from './scripts.js'
import type { NodeRedisClient, RedisBrokerLogger, RedisBrokerOptions } from './options.js'

/** Epochs are random so that a history Redis lost is never mistaken for a new one. Base36 of 64 bits. */
function newEpoch(): string {
  return randomBytes(8).readBigUInt64BE().toString(36)
}

/** Retries of a history read while Redis is away: 100 ms doubling to 2 s. */
const retryDelayMs = (attempt: number): number => Math.min(2000, 100 * 2 ** (attempt - 1))

const consoleLogger: RedisBrokerLogger = {
  error: (message, error) => console.error(message, error),
  info: (message) => console.info(message),
}

/**
 * History and fan-out in Redis, for any number of pushline nodes: one history
 * per channel (a stream, with the epoch and newest offset beside it), offsets
 * that stay contiguous whichever node publishes, and one subscriber connection
 * per node that listens only to the channels its clients use.
 */
export class RedisBroker implements Broker {
  readonly #client: NodeRedisClient
  /** The client as commands see it: with the command timeout. */
  readonly #commands: NodeRedisClient
  readonly #subscriber: NodeRedisClient
  readonly #ownsClient: boolean
  readonly #keyPrefix: string
  readonly #historySize: number
  readonly #historyTtlMs: number
  readonly #commandTimeoutMs: number
  readonly #sharded: boolean
  /** The event a connection emits when it can take commands. */
  readonly #readyEvent: 'ready' | 'connect'
  readonly #logger: RedisBrokerLogger
  readonly #feeds = new Map<string, { feed: ChannelFeed; keys: ChannelKeys; ready: Promise<void> }>()
  /** When the current outage began; undefined while Redis is reachable. */
  #outageSince: number | undefined
  readonly #readiness = new Map<NodeRedisClient, Promise<void>>()
  readonly #presence: RedisPresence
  #closed = false

  /** Presence kept in Redis, so that every node counts the members of all (see {@link RedisPresence}). */
  get presence(): BrokerPresence {
    return this.#presence
  }

  constructor(options: RedisBrokerOptions = {}) {
    this.#keyPrefix = options.keyPrefix ?? 'pushline:'
    this.#historySize = Math.max(0, Math.floor(options.historySize ?? 1000))
    this.#historyTtlMs = Math.max(1, Math.floor(options.historyTtlMs ?? 86_400_000))
    this.#commandTimeoutMs = options.commandTimeoutMs ?? 2000
    this.#logger = options.logger ?? consoleLogger
    if (options.client) {
      this.#client = options.client
      this.#ownsClient = false
    } else {
      // No offline queue: while Redis is away commands fail at once instead of piling up in memory.
      this.#client = createClient({ url: options.url ?? 'redis://127.0.0.1:6379', disableOfflineQueue: true })
      this.#ownsClient = true
    }
    const isCluster = 'masters' in this.#client
    this.#readyEvent = isCluster ? 'connect' : 'ready'
    this.#sharded = options.shardedPubSub ?? isCluster
    this.#commands = this.#client.withCommandOptions({ timeout: this.#commandTimeoutMs })
    // Subscribed connections can't run commands (RESP2), and a slow command must not hold up notifications.
    this.#subscriber = this.#client.duplicate()
    this.#client.on('error', this.#onError)
    this.#subscriber.on('error', this.#onError)
    this.#client.on(this.#readyEvent, this.#onReady)
    // A Cluster client reconnects (and resubscribes) node by node.
    this.#subscriber.on(isCluster ? 'node-ready' : 'ready', this.#onSubscriberReady)
    // Failures are reported through 'error' (once per outage); the clients keep reconnecting.
    if (!this.#client.isOpen) this.#client.connect().catch(() => {})
    this.#subscriber.connect().catch(() => {})
    const presenceTtlMs = Math.max(3, Math.floor(options.presenceTtlMs ?? 15_000))
    this.#presence = new RedisPresence(
      {
        keyPrefix: this.#keyPrefix,
        notifyCommand: this.#sharded ? 'SPUBLISH' : 'PUBLISH',
        run: (script, keys, args) => this.#run(script, keys, args),
        subscribe: async (channel, listener) => {
          if (this.#closed) throw closedError()
          const subscribed = this.#whenReady(this.#subscriber).then(() =>
            this.#sharded ? this.#subscriber.sSubscribe(channel, listener) : this.#subscriber.subscribe(channel, listener),
          )
          await this.#bounded(subscribed, this.#subscriber)
        },
        unsubscribe: (channel) => {
          const unsubscribed = this.#sharded ? this.#subscriber.sUnsubscribe(channel) : this.#subscriber.unsubscribe(channel)
          unsubscribed.catch(() => {})
        },
        logError: (message, error) => this.#logger.error(message, error),
      },
      presenceTtlMs,
    )
  }

  async publish(channel: string, event: string, data: unknown): Promise<StoredMessage> {
    const keys = channelKeys(this.#keyPrefix, channel)
    const reply = await this.#run(
      PUBLISH_SCRIPT,
      [keys.position, keys.history, keys.notify],
      [
        newEpoch(),
        JSON.stringify(event),
        JSON.stringify(data) ?? 'null',
        String(this.#historySize),
        String(this.#historyTtlMs),
        this.#sharded ? 'SPUBLISH' : 'PUBLISH',
      ],
    )
    const [epoch, offset] = reply as [string, number]
    return { channel, event, data, epoch, offset: Number(offset) }
  }

  async subscribe(channel: string, listener: (message: StoredMessage) => void): Promise<() => void> {
    if (this.#closed) throw closedError()
    const entry = this.#feeds.get(channel) ?? this.#openFeed(channel)
    // A wrapper per call, so subscribing the same function twice needs two unsubscribes.
    const wrapped = (message: StoredMessage): void => listener(message)
    entry.feed.listeners.add(wrapped)
    try {
      await entry.ready
    } catch (error) {
      entry.feed.listeners.delete(wrapped)
      throw error
    }
    return () => {
      entry.feed.listeners.delete(wrapped)
      if (entry.feed.listeners.size === 0) this.#closeFeed(channel, entry.feed)
    }
  }

  async recover(channel: string, since: Position | undefined, options: RecoverOptions = {}): Promise<Recovery> {
    const keys = channelKeys(this.#keyPrefix, channel)
    // XRANGE ... COUNT: Redis reads and sends one page, however long the history.
    const limit = options.limit === undefined ? 0 : Math.max(1, Math.floor(options.limit))
    const reply = await this.#run(
      RECOVER_SCRIPT,
      [keys.position, keys.history],
      [newEpoch(), since?.epoch ?? '', String(since?.offset ?? 0), String(this.#historyTtlMs), String(limit)],
    )
    const { epoch, newest, messages } = readReply(channel, reply)
    if (epoch === undefined) throw new PushError('INTERNAL', `Redis returned no epoch for ${channel}`)
    // protocol.md section 4, as in MemoryBroker.
    if (!since) return { epoch, offset: newest, messages: [] }
    const oldest = messages[0]?.offset ?? newest + 1
    // Offsets in the stream are contiguous, so a page that ends before the newest left some out.
    const page = (messages.at(-1)?.offset ?? newest) < newest ? { messages, more: true } : { messages }
    if (since.epoch !== epoch) return { epoch, offset: oldest - 1, ...page, gap: 'epoch-changed' }
    if (since.offset > newest) return { epoch, offset: newest, messages: [], gap: 'position-in-future' }
    if (since.offset + 1 >= oldest) return { epoch, offset: since.offset, ...page }
    return { epoch, offset: oldest - 1, ...page, gap: 'history-exhausted' }
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    // This node's members stop being renewed: they leave within presenceTtlMs unless another node holds them.
    this.#presence.close()
    for (const { feed } of this.#feeds.values()) feed.close()
    this.#feeds.clear()
    this.#client.off('error', this.#onError)
    this.#client.off(this.#readyEvent, this.#onReady)
    await Promise.all([
      closeQuietly(this.#subscriber),
      // The app's own client stays open: the app may use it for more than pushline.
      this.#ownsClient ? closeQuietly(this.#client) : undefined,
    ])
  }

  #openFeed(channel: string): { feed: ChannelFeed; keys: ChannelKeys; ready: Promise<void> } {
    const keys = channelKeys(this.#keyPrefix, channel)
    const feed = new ChannelFeed({
      read: (from, to) => this.#read(channel, keys, from, to),
      retryDelayMs,
      onListenerError: (error) => this.#logger.error(`pushline: a listener of ${channel} threw`, error),
    })
    const onNotification = (payload: string): void => {
      const message = parseNotification(channel, payload)
      if (message) feed.notify(message)
      else this.#logger.error(`pushline: unreadable notification on ${keys.notify}`)
    }
    const ready = (async () => {
      // Subscribed first, then the position read: every message after that position is announced.
      const subscribed = this.#whenReady(this.#subscriber).then(() =>
        this.#sharded
          ? this.#subscriber.sSubscribe(keys.notify, onNotification)
          : this.#subscriber.subscribe(keys.notify, onNotification),
      )
      await this.#bounded(subscribed, this.#subscriber)
      await feed.start()
    })()
    const entry = { feed, keys, ready }
    this.#feeds.set(channel, entry)
    ready.catch(() => {
      // Forget the failed feed so the next subscribe tries again.
      if (this.#feeds.get(channel) === entry) this.#closeFeed(channel, feed)
    })
    return entry
  }

  #closeFeed(channel: string, feed: ChannelFeed): void {
    feed.close()
    const entry = this.#feeds.get(channel)
    if (entry?.feed !== feed) return
    this.#feeds.delete(channel)
    const unsubscribed = this.#sharded ? this.#subscriber.sUnsubscribe(entry.keys.notify) : this.#subscriber.unsubscribe(entry.keys.notify)
    // Offline, the reconnect won't resubscribe it either: the listener is gone.
    unsubscribed.catch(() => {})
  }

  async #read(channel: string, keys: ChannelKeys, from: number, to: number | '+'): Promise<HistoryRead> {
    const reply = await this.#run(READ_SCRIPT, [keys.position, keys.history], [String(from), String(to)])
    return readReply(channel, reply)
  }

  /**
   * Runs a script within the command timeout; every failure to reach Redis is
   * BROKER_UNAVAILABLE. During a known outage calls fail at once; only a
   * broker that has not connected yet waits (bounded) for Redis.
   */
  async #run(script: LuaScript, keys: string[], args: string[]): Promise<unknown> {
    if (this.#closed) throw closedError()
    if (this.#outageSince !== undefined && !this.#client.isReady) {
      throw new PushError('BROKER_UNAVAILABLE', 'Redis unavailable (not connected)')
    }
    const options = { keys, arguments: args }
    let expired = false
    const call = async (): Promise<unknown> => {
      // Redis came back after the caller was told it failed: the call must not happen behind its back.
      if (expired) throw new Error('expired')
      try {
        return await this.#commands.evalSha(script.sha, options)
      } catch (error) {
        // Redis forgets scripts when it restarts; EVAL teaches it again.
        if (error instanceof Error && error.message.startsWith('NOSCRIPT')) return await this.#commands.eval(script.source, options)
        throw error
      }
    }
    try {
      return await this.#bounded(this.#whenReady(this.#client).then(call), this.#client)
    } finally {
      expired = true
    }
  }

  /** `work`, or BROKER_UNAVAILABLE once the command timeout passes or Redis fails it. */
  async #bounded<T>(work: Promise<T>, connection: NodeRedisClient): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${this.#commandTimeoutMs} ms`)), this.#commandTimeoutMs)
    })
    try {
      return await Promise.race([work, deadline])
    } catch (error) {
      if (this.#closed) throw closedError()
      const reason = error instanceof Error ? error.message : String(error)
      const state = connection.isReady ? '' : ' (not connected)'
      throw new PushError('BROKER_UNAVAILABLE', `Redis unavailable${state}: ${reason}`, { cause: error })
    } finally {
      clearTimeout(timer)
      // The loser of the race must not surface as an unhandled rejection.
      work.catch(() => {})
    }
  }

  /**
   * Resolves when `connection` is ready; the caller bounds the wait. One
   * waiter per connection however many calls wait, so an outage does not pile
   * up listeners.
   */
  #whenReady(connection: NodeRedisClient): Promise<void> {
    if (connection.isReady) return Promise.resolve()
    let waiting = this.#readiness.get(connection)
    if (!waiting) {
      waiting = new Promise<void>((resolve) => {
        const onReady = (): void => {
          connection.off(this.#readyEvent, onReady)
          this.#readiness.delete(connection)
          resolve()
        }
        connection.on(this.#readyEvent, onReady)
      })
      this.#readiness.set(connection, waiting)
    }
    return waiting
  }

  /** Either connection failed: an outage begins, unless one is already under way. */
  readonly #onError = (error: Error): void => {
    if (this.#closed || this.#outageSince !== undefined) return
    this.#outageSince = Date.now()
    this.#logger.error('pushline: Redis unreachable; publishes fail with BROKER_UNAVAILABLE until it is back', error)
  }

  /** The outage ends when both connections are ready again. */
  readonly #onReady = (): void => {
    if (this.#outageSince === undefined || !this.#client.isReady || !this.#subscriber.isReady) return
    const lastedMs = Date.now() - this.#outageSince
    this.#outageSince = undefined
    this.#logger.info?.(`pushline: Redis reachable again after ${lastedMs} ms`)
  }

  /** The subscriber (re)connected, resubscribed: fetch what was announced while it was away. */
  readonly #onSubscriberReady = (): void => {
    this.#onReady()
    for (const { feed } of this.#feeds.values()) feed.catchUp()
  }
}

function closedError(): PushError {
  return new PushError('SERVER_SHUTDOWN', 'broker closed')
}

async function closeQuietly(client: NodeRedisClient): Promise<void> {
  try {
    await client.close()
  } catch {
    // Already closed, or never connected.
    client.destroy()
  }
}

/** `<epoch> <offset> [<event>,<data>]` as sent by PUBLISH_SCRIPT; undefined when malformed. */
function parseNotification(channel: string, payload: string): StoredMessage | undefined {
  const firstSpace = payload.indexOf(' ')
  const secondSpace = payload.indexOf(' ', firstSpace + 1)
  if (firstSpace < 1 || secondSpace < 0) return undefined
  const offset = Number(payload.slice(firstSpace + 1, secondSpace))
  try {
    const [event, data] = JSON.parse(payload.slice(secondSpace + 1)) as [unknown, unknown]
    if (typeof event !== 'string' || !Number.isSafeInteger(offset)) return undefined
    return { channel, event, data, epoch: payload.slice(0, firstSpace), offset }
  } catch {
    return undefined
  }
}

/** `{ epoch or nil, newest, entries }` from RECOVER_SCRIPT and READ_SCRIPT. */
function readReply(channel: string, reply: unknown): HistoryRead {
  const [epoch, newest, entries] = reply as [string | null, number, [string, string[]][]]
  const messages: StoredMessage[] = []
  if (typeof epoch !== 'string') return { epoch: undefined, newest: 0, messages }
  for (const [id, fields] of entries) {
    // Fields in the order PUBLISH_SCRIPT wrote them: event, data, at.
    messages.push({
      channel,
      event: JSON.parse(fields[1] ?? '""') as string,
      data: JSON.parse(fields[3] ?? 'null') as unknown,
      epoch,
      offset: Number.parseInt(id, 10),
    })
  }
  return { epoch, newest: Number(newest), messages }
}
