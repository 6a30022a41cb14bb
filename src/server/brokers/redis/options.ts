/**
 * What RedisBroker uses of a node-redis v6 client (`createClient` of `redis`
 * or `@redis/client`) or Cluster client (`createCluster`). Written out rather
 * than imported so that clients built with any modules, scripts or RESP
 * version are accepted.
 */
export interface NodeRedisClient {
  readonly isOpen: boolean
  readonly isReady: boolean
  connect(): Promise<unknown>
  duplicate(): NodeRedisClient
  withCommandOptions(options: { timeout: number }): NodeRedisClient
  evalSha(sha: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>
  subscribe(channel: string, listener: (message: string, channel: string) => void): Promise<void>
  unsubscribe(channel: string): Promise<void>
  sSubscribe(channel: string, listener: (message: string, channel: string) => void): Promise<void>
  sUnsubscribe(channel: string): Promise<void>
  on(event: 'error', listener: (error: Error) => void): unknown
  /** `ready` on a client; a Cluster client says `connect` once it knows the slots and `node-ready` per node. */
  on(event: 'ready' | 'connect' | 'node-ready', listener: () => void): unknown
  off(event: 'error', listener: (error: Error) => void): unknown
  off(event: 'ready' | 'connect' | 'node-ready', listener: () => void): unknown
  close(): Promise<void>
  destroy(): void
}

/** Where RedisBroker reports outages: once when Redis becomes unreachable, once when it is back. */
export interface RedisBrokerLogger {
  error(message: string, error?: unknown): void
  info?(message: string): void
}

export interface RedisBrokerOptions {
  /**
   * Redis to connect to, `redis[s]://[[user][:password]@]host[:port][/db]`.
   * Ignored when `client` is given.
   * @default 'redis://127.0.0.1:6379'
   */
  url?: string
  /**
   * Your own node-redis v6 client or Cluster client, instead of `url`. The
   * broker connects it if it is not open yet, duplicates it once for its
   * subscriber connection, and leaves it open on close. Give it
   * `disableOfflineQueue: true` if your app publishes a lot: the broker
   * never sends while it is disconnected, but your other commands would queue.
   * Leave node-redis's own `keyPrefix` unset on it (it would prefix keys but
   * not pub/sub channels); use this broker's `keyPrefix` instead.
   * @default undefined (a client for `url`)
   */
  client?: NodeRedisClient
  /**
   * Prepended to every key and pub/sub channel the broker uses, to share a
   * Redis with other apps or several pushline deployments.
   * @default 'pushline:'
   */
  keyPrefix?: string
  /**
   * Messages kept per channel for resume (the stream's exact MAXLEN); 0 keeps none.
   * @default 1000
   */
  historySize?: number
  /**
   * Age in ms after which a message leaves history. It is also the TTL of a
   * channel's keys, renewed by every publish and resume: a channel unused for
   * this long is forgotten, and its next publish starts a new epoch.
   * @default 86_400_000 (24 h)
   */
  historyTtlMs?: number
  /**
   * How long (ms) presence counts the members of a node that stopped renewing them (killed,
   * frozen, cut off from Redis). Each node renews its members three times per this period, so
   * a shorter one notices a dead node sooner for more Redis calls: one script per presence
   * channel in use per node per third of it.
   * @default 15_000
   */
  presenceTtlMs?: number
  /**
   * Longest wait in ms for Redis to answer (or come back) before a call
   * rejects with `BROKER_UNAVAILABLE`. While Redis is down calls fail at
   * once when the broker created the client (no offline queue).
   * @default 2000
   */
  commandTimeoutMs?: number
  /**
   * Announce messages with sharded pub/sub (SPUBLISH/SSUBSCRIBE, Redis 7+),
   * which on a Cluster stays on the shard that holds the channel instead of
   * being broadcast to every node.
   * @default true for a Cluster client, false otherwise
   */
  shardedPubSub?: boolean
  /**
   * Where outages are reported.
   * @default console
   */
  logger?: RedisBrokerLogger
}
