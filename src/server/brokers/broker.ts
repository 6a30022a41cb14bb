import type { GapReason, PresenceMemberInfo } from '../../protocol/frames.js'
import type { Position } from '../../protocol/position.js'

/** A message as stored by a broker. */
export interface StoredMessage {
  channel: string
  event: string
  data: unknown
  epoch: string
  offset: number
}

/** What a broker can replay for a subscription that resumes. */
export interface Recovery {
  /** Position the replay starts after (the `subscribed` frame's position). */
  epoch: string
  offset: number
  /** Messages after that position, in order, up to the channel's newest. */
  messages: StoredMessage[]
  /** Set when the requested position could not be recovered in full. */
  gap?: GapReason
  /**
   * True when `messages` stops before the channel's newest message because of
   * {@link RecoverOptions.limit}: the caller asks again from the last message's position.
   */
  more?: boolean
}

/** How much {@link Broker.recover} returns at once. */
export interface RecoverOptions {
  /**
   * At most this many messages (the oldest first), with `more` set when the
   * channel has newer ones. The hub replays history in pages of this size so
   * that a resume never holds a channel's whole history for one connection.
   * Every broker keeps it (the broker suite checks); the hub would cope with
   * one that returned everything, but not within its memory bound.
   */
  limit?: number
}

/** A member joined or left a presence channel on some node. */
export interface PresenceChange {
  action: 'join' | 'leave'
  member: PresenceMemberInfo
}

/** What one node sees of a presence channel kept by the broker, from {@link BrokerPresence.watch}. */
export interface PresenceWatch {
  /** The channel's members on every node, in order of joining, as of the last change seen. */
  members(): PresenceMemberInfo[]
  /** Stops the changes. */
  stop(): void
}

/**
 * Presence kept by the broker for every node, so that `who is online` counts the members of
 * all nodes. A node holds a member on a channel while it has a subscription of it there (its
 * own grace period included); a member is on the channel while any node holds it, and leaves
 * when the last one lets go or stops renewing (a node that died). Optional: without it each
 * process tracks its own members.
 */
export interface BrokerPresence {
  /** This node holds `id` on `channel` (renewing it until {@link leave}); the first hold announces a join. */
  join(channel: string, id: string): Promise<void>
  /** This node lets go of `id` on `channel`; the last hold to go announces a leave. */
  leave(channel: string, id: string): Promise<void>
  /** The channel's members on every node, in order of joining. */
  members(channel: string): Promise<PresenceMemberInfo[]>
  /**
   * Delivers the channel's joins and leaves, from every node, to `listener`; resolves once the
   * member set is known, with a view of it that follows the changes.
   */
  watch(channel: string, listener: (change: PresenceChange) => void): Promise<PresenceWatch>
}

/**
 * Stores channel history and fans messages out to the server processes that
 * subscribe. The in-memory broker serves one process; a Redis broker serves
 * several, with history and positions kept in Redis so a client can resume on
 * any node. Transports never talk to a broker directly: the hub does.
 */
export interface Broker {
  /** Appends a message to a channel's history and delivers it to every subscribed listener. */
  publish(channel: string, event: string, data: unknown): Promise<StoredMessage>
  /**
   * Starts delivering a channel's new messages to `listener`, in offset order.
   * Resolves once delivery is guaranteed for every message published after it.
   * Returns a function that stops delivery.
   */
  subscribe(channel: string, listener: (message: StoredMessage) => void): Promise<() => void>
  /**
   * Everything after `since` (or nothing, with the current position, when `since` is undefined),
   * up to `options.limit` messages.
   */
  recover(channel: string, since: Position | undefined, options?: RecoverOptions): Promise<Recovery>
  /** Releases resources; pending calls may reject. */
  close(): Promise<void>
  /** Presence across nodes; when absent, presence is per process. */
  readonly presence?: BrokerPresence | undefined
}
