/**
 * Where RedisBroker keeps a channel. Every key and the notification channel
 * of one pushline channel carry the channel name as a hash tag (`{name}`), so
 * on Redis Cluster they all live in one hash slot and one Lua script may touch
 * them all. Channel names never contain `{` or `}` (protocol/position.ts), so
 * the tag is exactly the name.
 */
export interface ChannelKeys {
  /** Hash: `epoch` (random id of this history) and `offset` (newest offset; 0 before the first). */
  readonly position: string
  /** Stream of the newest messages; entry id `<offset>-0`, fields `event`, `data` (both JSON), `at` (ms). */
  readonly history: string
  /** Pub/sub channel announcing each new message to the nodes that subscribe. */
  readonly notify: string
  /** Sorted set of presence holds: `<node id><member id>`, scored by when the hold expires (ms). */
  readonly presenceHolds: string
  /** Hash: member id → when it joined (ms), for members held by any node. */
  readonly presenceMembers: string
  /** Hash: member id → how many nodes hold it. */
  readonly presenceCounts: string
  /** Pub/sub channel announcing joins and leaves: JSON `{"action","id","joinedAt"}`. */
  readonly presenceNotify: string
}

export function channelKeys(keyPrefix: string, channel: string): ChannelKeys {
  const tagged = `${keyPrefix}{${channel}}`
  return {
    position: `${tagged}:position`,
    history: `${tagged}:history`,
    notify: `${tagged}:notify`,
    presenceHolds: `${tagged}:presence-holds`,
    presenceMembers: `${tagged}:presence-members`,
    presenceCounts: `${tagged}:presence-counts`,
    presenceNotify: `${tagged}:presence-notify`,
  }
}
