/**
 * `pushline/redis`: a Broker that keeps history in Redis and fans messages
 * out through it, so that any number of pushline nodes serve one set of
 * channels. Its own entry so that `pushline/server` never loads a Redis client.
 */
export { RedisBroker } from './redis-broker.js'
export type { NodeRedisClient, RedisBrokerLogger, RedisBrokerOptions } from './options.js'
