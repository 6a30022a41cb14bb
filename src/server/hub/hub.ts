import type { PresenceMemberInfo } from '../../protocol/frames.js'
import type { Position } from '../../protocol/position.js'
import type { Broker, Recovery, StoredMessage } from '../brokers/broker.js'
import type { Logger, PresenceMember } from '../options.js'
import type { AccessPolicy } from '../policy/authorization.js'
import { Connection, FlushScheduler } from './connection.js'
import { EpochFlapMonitor } from './epoch-flap-monitor.js'
import { OutFrame, PING_ALONE, closeFrame, errorFrame, gapFrame, messageFrame, subscribedFrame } from './out-frame.js'
import { MESSAGE_FRAME_CACHE_BYTES, MessageFrameCache, REPLAY_BACKLOG_MESSAGES, REPLAY_PAGE_MESSAGES } from './replay.js'
import { PresenceMailboxes, PresenceTracker } from './presence.js'
import { UserConnections } from './user-connections.js'

export interface HubOptions {
  broker: Broker
  heartbeatMs: number
  heartbeatGraceMs: number
  maxSubscriptions: number
  /**
   * A subscribe's `rewind` is clamped to this.
   * @default 100
   */
  maxRewind?: number | undefined
  maxBufferedBytes: number
  /** How long a channel keeps its broker subscription after its last local subscriber left (0: not at all). */
  brokerLingerMs: number
  logger: Logger
  /** Who may subscribe to what; asked before every subscribe. Without it, everybody may anything. */
  access?: AccessPolicy | undefined
  /** Which channels track presence; undefined: none. */
  presence?: ((channel: string) => boolean) | undefined
  /** @default 5000 */
  presenceGraceMs?: number | undefined
}

/** One channel's entry in a connection's subscription table. */
export interface SubscribeRequest {
  channel: string
  since?: Position | undefined
  /** Without `since`: replay up to this many of the channel's newest messages first (protocol.md 4, rule 5). */
  rewind?: number | undefined
  rid?: string | undefined
  /**
   * The client already holds this subscription at `since` (a poll carrying
   * its positions): `subscribed` goes out only when the position changes,
   * that is with a gap, so a poll with nothing new stays empty.
   */
  continues?: boolean | undefined
}

/** A connection's subscription to one channel. */
export interface Subscription {
  readonly connection: Connection
  readonly channel: string
  readonly local: LocalChannel
  /**
   * What the subscription needs until it is live; undefined once live. Apart, so that a live
   * subscription (what every idle connection holds) does not carry nine fields it no longer uses.
   */
  replay: SubscriptionReplay | undefined
  /** Position of the last frame sent for this channel (valid once live). */
  epoch: string
  offset: number
  active: boolean
  /** The presence member this subscription counts for, once live on a presence channel. */
  member: string | undefined
  /** Its connection got the member set (a `sync`, or the deltas its poll missed). */
  presenceSent: boolean
}

/** A subscription's request and the state of its replay, from subscribe until it goes live. */
interface SubscriptionReplay {
  readonly rid: string | undefined
  readonly since: Position | undefined
  /** How many of the newest messages the first page starts before (0: none), clamped to maxRewind. */
  readonly rewind: number
  readonly continues: boolean
  /**
   * Live messages that arrived while recovering. At most REPLAY_BACKLOG_MESSAGES: past that it
   * is emptied and `backlogDropped` set.
   */
  readonly backlog: StoredMessage[]
  /** Backlog messages were dropped: the replay fetches history once more before going live. */
  backlogDropped: boolean
  /** The history page being replayed (undefined before the first), and the next message's index in it. */
  page: StoredMessage[] | undefined
  pageIndex: number
  /** History has more after the page. */
  more: boolean
}

/**
 * A channel with subscribers in this process: one broker subscription, shared
 * by all of them. It outlives its last subscriber by `brokerLingerMs`, so that
 * clients that leave and come back at once (every long poll does) find it
 * still subscribed instead of costing the broker a subscribe and an
 * unsubscribe each time.
 */
interface LocalChannel {
  readonly name: string
  readonly subscribers: Set<Subscription>
  /** Resolves when the broker delivers every message published from now on. */
  ready: Promise<void>
  stop: (() => void) | undefined
  /** Set while the channel has no subscriber: releases it when it fires. */
  linger: ReturnType<typeof setTimeout> | undefined
  released: boolean
}

/** Past this many subscriptions a connection's table becomes a Map. */
const LIST_TABLE_MAX = 8

/**
 * A connection's subscriptions by channel, as a value the hub replaces: none (undefined), the one
 * subscription itself, an array of exactly their number, or past {@link LIST_TABLE_MAX} a Map, so
 * that a client with many channels still finds one in constant time. Most connections hold one
 * or a few, and every idle one holds its table: one subscription held as itself costs nothing
 * beyond it, where an object around an array costs ~90 bytes and a Map's empty hash table ~200.
 * An array is replaced, never changed, so iterating {@link subscriptionsIn} while subscriptions
 * are removed is safe (as a Map's iteration is).
 */
type SubscriptionTable = Subscription | readonly Subscription[] | Map<string, Subscription> | undefined

function isSubscriptionList(table: SubscriptionTable): table is readonly Subscription[] {
  return Array.isArray(table)
}

function subscriptionCount(table: SubscriptionTable): number {
  if (table === undefined) return 0
  if (table instanceof Map) return table.size
  return isSubscriptionList(table) ? table.length : 1
}

function subscriptionOf(table: SubscriptionTable, channel: string): Subscription | undefined {
  if (table === undefined) return undefined
  if (table instanceof Map) return table.get(channel)
  if (!isSubscriptionList(table)) return table.channel === channel ? table : undefined
  for (const subscription of table) if (subscription.channel === channel) return subscription
  return undefined
}

/** The table with `subscription` added, replacing the one of its channel if there is one. */
function withSubscription(table: SubscriptionTable, subscription: Subscription): SubscriptionTable {
  if (table === undefined) return subscription
  if (table instanceof Map) return table.set(subscription.channel, subscription)
  const list = isSubscriptionList(table) ? table : [table]
  const index = list.findIndex((other) => other.channel === subscription.channel)
  if (index >= 0) {
    if (list.length === 1) return subscription
    const replaced = list.slice()
    replaced[index] = subscription
    return replaced
  }
  // concat makes an array of exactly the length needed (push reserves room for 17).
  if (list.length < LIST_TABLE_MAX) return list.concat([subscription])
  const map = new Map<string, Subscription>()
  for (const other of list) map.set(other.channel, other)
  return map.set(subscription.channel, subscription)
}

/** The table without the subscription of `channel`. */
function withoutSubscription(table: SubscriptionTable, channel: string): SubscriptionTable {
  if (table === undefined) return undefined
  if (table instanceof Map) {
    table.delete(channel)
    return table
  }
  if (!isSubscriptionList(table)) return table.channel === channel ? undefined : table
  const rest = table.filter((subscription) => subscription.channel !== channel)
  return rest.length <= 1 ? rest[0] : rest
}

/** The table's subscriptions, safe to iterate while they are removed. */
function subscriptionsIn(table: SubscriptionTable): Iterable<Subscription> {
  if (table === undefined) return []
  if (table instanceof Map) return table.values()
  return isSubscriptionList(table) ? table : [table]
}

/**
 * A connection's replays, run one subscription at a time in subscribe order,
 * a frame at a time while the connection has room for more output.
 */
interface ReplayQueue {
  readonly connection: Connection
  /** Subscriptions whose `subscribed` frame or replay has yet to go out, oldest first. */
  readonly waiting: Subscription[]
  /** Set while a pass runs; a pass ends when the queue is empty or the connection has no room. */
  pumping: boolean
  pass: Promise<void>
}

/**
 * Channels kept subscribed in the broker without a subscriber here (brokerLingerMs); past
 * this the one that has lingered longest is released early. Releasing loses nothing.
 */
const MAX_LINGERING_CHANNELS = 10_000

/** How long shutdown waits for clients to complete the close handshake. */
const SHUTDOWN_WAIT_MS = 1000
/** Close frames ask for a reconnect delay in [0, this), so clients don't all come back at once. */
const SHUTDOWN_RETRY_SPREAD_MS = 2000
/** A client whose subscribe found the broker unavailable retries no sooner than this (plus the spread). */
const BROKER_RETRY_MIN_MS = 1000
/** A client whose epochs flap (nodes that don't share a broker) is told to come back no sooner than this. */
const EPOCH_FLAP_RETRY_MS = 30_000
const EPOCH_FLAP_MESSAGE =
  'this channel resumes in a different epoch on nearly every request: several pushline nodes, each with its own ' +
  'in-memory broker, behind one URL? Give them a shared broker (RedisBroker from pushline/redis) or use sticky sessions'

/**
 * Channels, subscriptions and fan-out, independent of transports: a
 * transport creates a {@link Connection}, adds it, and asks to subscribe.
 */
export class Hub {
  readonly scheduler: FlushScheduler
  readonly #options: HubOptions
  /** Every connection, with its subscriptions by channel. */
  readonly #connections = new Map<Connection, SubscriptionTable>()
  readonly #channels = new Map<string, LocalChannel>()
  readonly #replays = new Map<Connection, ReplayQueue>()
  /** Channels without subscribers keeping their broker subscription, the oldest first. */
  readonly #lingering = new Set<LocalChannel>()
  /** Message frames shared by fan-out and replays: each message is encoded once however many connections get it. */
  readonly #frames = new MessageFrameCache(MESSAGE_FRAME_CACHE_BYTES)
  /**
   * A replay builds its next frame only while the connection's output is below
   * this: half of maxBufferedBytes, so that live messages arriving meanwhile
   * have the other half before the connection counts as a slow consumer.
   */
  readonly #replayRoom: number
  readonly #heartbeat: ReturnType<typeof setInterval>
  readonly #users = new UserConnections((connection) => {
    connection.shutdown(closeFrame('TOKEN_EXPIRED', 'token expired'))
  })
  readonly #presence: PresenceTracker | undefined
  readonly #mailboxes: PresenceMailboxes
  readonly #epochFlaps = new EpochFlapMonitor()
  /** Logged once per process: the fix is the same for every client. */
  #epochFlapLogged = false
  #closed = false

  constructor(options: HubOptions) {
    this.#options = options
    this.#replayRoom = options.maxBufferedBytes / 2
    const presenceGraceMs = options.presenceGraceMs ?? 5000
    this.#mailboxes = new PresenceMailboxes(presenceGraceMs)
    if (options.presence) {
      this.#presence = new PresenceTracker({
        tracks: options.presence,
        graceMs: presenceGraceMs,
        broadcast: (channel, frame) => this.#broadcastPresence(channel, frame),
        shared: options.broker.presence,
        onError: (message, error) => options.logger.error(message, error),
      })
    }
    this.scheduler = new FlushScheduler(this.#checkBacklog)
    // One interval for all connections: a timer per connection costs memory and wakeups.
    this.#heartbeat = setInterval(this.#beat, options.heartbeatMs).unref()
  }

  /** Channels the hub keeps, with subscribers or lingering (for tests of its bounds). */
  get channelRecords(): number {
    return this.#channels.size
  }

  stats(): { connections: number; channels: number; subscriptions: number } {
    let subscriptions = 0
    for (const table of this.#connections.values()) subscriptions += subscriptionCount(table)
    // A lingering channel has no subscriber: it is the broker's, not a client's, and not counted.
    let channels = 0
    for (const local of this.#channels.values()) if (local.subscribers.size > 0) channels += 1
    return { connections: this.#connections.size, channels, subscriptions }
  }

  /** False once shutdown has begun: transports that authenticate asynchronously check before adding. */
  get isOpen(): boolean {
    return !this.#closed
  }

  add(connection: Connection): void {
    if (this.#connections.has(connection)) return
    this.#connections.set(connection, undefined)
    this.#users.add(connection)
  }

  /** Forgets a connection and everything kept for it. Idempotent. */
  remove(connection: Connection): void {
    if (!this.#connections.has(connection)) return
    const table = this.#connections.get(connection)
    this.#connections.delete(connection)
    this.#replays.delete(connection)
    this.#users.remove(connection)
    if (isPoll(connection)) {
      // A poll is a connection only while held: keep the presence deltas until its next poll.
      // Opened before the members' grace periods start, so it expires first (then the next poll syncs).
      // Not for a channel whose sync had not gone out yet (a shared presence answers later): its next poll syncs.
      const presenceChannels = [...subscriptionsIn(table)].filter((s) => s.presenceSent).map((s) => s.channel)
      if (presenceChannels.length > 0) this.#mailboxes.open(connection.session, presenceChannels)
    }
    for (const subscription of subscriptionsIn(table)) this.#detach(subscription)
    connection.markClosed()
  }

  /** Closes every connection of `userId` with a `close` frame `UNAUTHORIZED`; returns how many. */
  disconnectUser(userId: string, message: string): number {
    const connections = this.#users.of(userId).filter((connection) => connection.isOpen)
    for (const connection of connections) connection.shutdown(closeFrame('UNAUTHORIZED', message))
    return connections.length
  }

  /** The members of a presence channel in this process. */
  presence(channel: string): PresenceMember[] {
    return this.#presence?.members(channel) ?? []
  }

  /** The members of a presence channel on every node sharing the broker's presence; else in this process. */
  async presenceAcrossNodes(channel: string): Promise<PresenceMemberInfo[]> {
    const shared = this.#options.broker.presence
    if (!this.#presence?.tracks(channel)) return []
    if (!shared) return this.#presence.members(channel).map(({ id, joinedAt }) => ({ id, joinedAt }))
    return shared.members(channel)
  }

  /**
   * Subscribes `connection` to each request's channel, resuming from its
   * position (protocol.md 4). Frames for the requests go out in request
   * order: `subscribed`, the replay, then live messages. Resolves once they
   * have gone out, or once the connection's output is full: the rest of the
   * replay follows as the client reads (see {@link #pump}). Never rejects.
   */
  async subscribe(connection: Connection, requests: readonly SubscribeRequest[]): Promise<void> {
    const { access } = this.#options
    if (access?.restricts) requests = await this.#admit(connection, requests, access)
    if (!this.#connections.has(connection)) return
    let queue = this.#replays.get(connection)
    if (!queue) {
      queue = { connection, waiting: [], pumping: false, pass: Promise.resolve() }
      this.#replays.set(connection, queue)
    }
    for (const request of requests) {
      if (!connection.isOpen) return
      const previous = this.#subscriptionOf(connection, request.channel)
      if (previous) {
        // Subscribing again replaces the subscription (a recovery still running for it is dropped).
        this.#detach(previous)
      } else if (subscriptionCount(this.#connections.get(connection)) >= this.#options.maxSubscriptions) {
        const message = `more than ${this.#options.maxSubscriptions} subscriptions`
        connection.send(new OutFrame(errorFrame('TOO_MANY_SUBSCRIPTIONS', message, request)))
        continue
      }
      const local = this.#localChannel(request.channel)
      const subscription: Subscription = {
        connection,
        // The channel's one copy of the name, not the request's: a string less per subscription.
        channel: local.name,
        local,
        replay: {
          rid: request.rid,
          since: request.since,
          rewind: request.since ? 0 : Math.min(request.rewind ?? 0, this.#options.maxRewind ?? 100),
          continues: request.continues === true && request.since !== undefined,
          // Listening before recovering, and buffering meanwhile, is what makes
          // resume race-free with an async broker: a message published during
          // recovery is either in the recovery or in the backlog (or both;
          // offsets drop the duplicate).
          backlog: [],
          backlogDropped: false,
          page: undefined,
          pageIndex: 0,
          more: false,
        },
        epoch: '',
        offset: 0,
        active: true,
        member: undefined,
        presenceSent: false,
      }
      local.subscribers.add(subscription)
      this.#connections.set(connection, withSubscription(this.#connections.get(connection), subscription))
      queue.waiting.push(subscription)
    }
    await this.#runReplays(queue)
  }

  /**
   * The requests the access policy allows. Each refused one is answered with an `error` frame
   * naming its channel (and rid), and ends the subscription it would have replaced: a resume is
   * decided like a first subscribe, so a replay never reaches a connection that may not read it.
   */
  async #admit(connection: Connection, requests: readonly SubscribeRequest[], access: AccessPolicy): Promise<SubscribeRequest[]> {
    const refusals = await Promise.all(
      requests.map((request) => access.check(connection.identity, request.channel, 'subscribe', connection.transport)),
    )
    const admitted: SubscribeRequest[] = []
    requests.forEach((request, i) => {
      const refusal = refusals[i]
      if (!refusal) {
        admitted.push(request)
        return
      }
      const previous = this.#subscriptionOf(connection, request.channel)
      if (previous) this.#detach(previous)
      connection.send(new OutFrame(errorFrame(refusal.code, refusal.message, request)))
    })
    return admitted
  }

  /** Stops delivery of `channel` to `connection`; unknown channels are ignored. */
  unsubscribe(connection: Connection, channel: string): void {
    const subscription = this.#subscriptionOf(connection, channel)
    if (subscription) this.#detach(subscription)
  }

  #subscriptionOf(connection: Connection, channel: string): Subscription | undefined {
    return subscriptionOf(this.#connections.get(connection), channel)
  }

  /** Sends every connection a `close` frame, waits briefly for them to go, then drops the rest. */
  async shutdown(): Promise<void> {
    this.#closed = true
    clearInterval(this.#heartbeat)
    this.#presence?.clear()
    this.#mailboxes.clear()
    const connections = [...this.#connections.keys()]
    for (const connection of connections) {
      const retryMs = Math.floor(Math.random() * SHUTDOWN_RETRY_SPREAD_MS)
      connection.shutdown(closeFrame('SERVER_SHUTDOWN', 'server shutting down', retryMs))
    }
    let timer: ReturnType<typeof setTimeout> | undefined
    await Promise.race([
      Promise.all(connections.map((c) => c.done)),
      new Promise((resolve) => (timer = setTimeout(resolve, SHUTDOWN_WAIT_MS))),
    ])
    clearTimeout(timer)
    for (const connection of [...this.#connections.keys()]) {
      connection.terminate()
      this.remove(connection)
    }
    // Channels that were lingering before shutdown began.
    for (const local of [...this.#channels.values()]) this.#release(local)
    this.#frames.clear()
  }

  #runReplays(queue: ReplayQueue): Promise<void> {
    if (!queue.pumping) {
      queue.pumping = true
      queue.pass = this.#pump(queue)
    }
    return queue.pass
  }

  /**
   * Sends what the connection's waiting subscriptions owe it, one frame at a
   * time, checking the connection's output before building each: past
   * {@link #replayRoom} it stops, and goes on when the transport reports the
   * output drained. So a client that does not read holds at most its budget
   * here, whatever history it asks for, and one that reads gets everything.
   */
  async #pump(queue: ReplayQueue): Promise<void> {
    const { connection, waiting } = queue
    try {
      for (;;) {
        const subscription = waiting[0]
        if (!subscription || !connection.isOpen || this.#replays.get(connection) !== queue) return
        const { replay } = subscription
        if (!subscription.active || !replay) {
          waiting.shift()
          continue
        }
        if (connection.outputBytes() >= this.#replayRoom) {
          connection.onDrain = this.#resumeReplays
          return
        }
        const { page } = replay
        const message = page?.[replay.pageIndex]
        if (message) {
          replay.pageIndex += 1
          this.#deliver(subscription, message, this.#frames.frameOf(message, this.#encode))
        } else if (!page || replay.more || replay.backlogDropped) {
          await this.#fetchPage(subscription, replay)
        } else {
          waiting.shift()
          this.#goLive(subscription, replay)
        }
      }
    } finally {
      queue.pumping = false
      // Done: an idle connection keeps no queue (its object, array and promise); the next subscribe makes one.
      if (waiting.length === 0 && this.#replays.get(connection) === queue) this.#replays.delete(connection)
    }
  }

  /** Resumes a connection's paused replays once its output has room again. */
  readonly #resumeReplays = (connection: Connection): void => {
    const queue = this.#replays.get(connection)
    if (!queue || queue.pumping || queue.waiting.length === 0) return
    if (connection.outputBytes() >= this.#replayRoom) return
    connection.onDrain = undefined
    void this.#runReplays(queue)
  }

  /**
   * Fetches the subscription's next page of history. The first page decides
   * the `subscribed` frame (left out for a continuing subscription that stays
   * where the client is); a later one that finds history moved on (the client
   * read slowly) says so with a `gap`.
   */
  async #fetchPage(subscription: Subscription, replay: SubscriptionReplay): Promise<void> {
    const { connection, channel } = subscription
    const { since, rewind } = replay
    const first = replay.page === undefined
    replay.backlogDropped = false
    let from = first ? since : { epoch: subscription.epoch, offset: subscription.offset }
    let recovery: Recovery
    try {
      await subscription.local.ready
      if (first && rewind) {
        // A rewind is a resume from `rewind` before the newest message, paged like any other replay.
        const newest = await this.#options.broker.recover(channel, undefined)
        if (!subscription.active) return
        from = { epoch: newest.epoch, offset: Math.max(0, newest.offset - rewind) }
      }
      recovery = await this.#options.broker.recover(channel, from, { limit: REPLAY_PAGE_MESSAGES })
    } catch (error) {
      if (!subscription.active) return
      if ((error as { code?: unknown } | undefined)?.code === 'BROKER_UNAVAILABLE') {
        // Not this channel's fault and not for good: the client comes back later with its positions
        // (an error frame would end its subscription, and a poll would retry at once, in a loop).
        // The broker logs its outage once.
        const retryMs = BROKER_RETRY_MIN_MS + Math.floor(Math.random() * SHUTDOWN_RETRY_SPREAD_MS)
        connection.shutdown(closeFrame('BROKER_UNAVAILABLE', 'broker unavailable', retryMs))
        return
      }
      this.#options.logger.error(`pushline: recovering ${channel} failed`, error)
      if (first) {
        const { rid } = replay
        connection.send(new OutFrame(errorFrame('INTERNAL', 'subscribe failed', { rid, channel })))
        this.#detach(subscription)
      } else {
        // Mid-replay: the client resumes from what it got when it reconnects.
        connection.terminate()
        this.remove(connection)
      }
      return
    }
    if (!subscription.active) return
    if (
      first &&
      recovery.gap === 'epoch-changed' &&
      replay.continues &&
      this.#epochFlaps.observe(connection.session, Date.now())
    ) {
      // Replaying this node's history to a client that will be on another node next time is the loop to break.
      if (!this.#epochFlapLogged) this.#options.logger.error(`pushline: ${EPOCH_FLAP_MESSAGE}`)
      this.#epochFlapLogged = true
      connection.shutdown(closeFrame('EPOCH_FLAPPING', EPOCH_FLAP_MESSAGE, EPOCH_FLAP_RETRY_MS))
      return
    }
    // History shorter than the rewind asked for is no loss to a subscription that had no position.
    if (first && rewind && recovery.gap === 'history-exhausted') recovery = { ...recovery, gap: undefined }
    replay.page = recovery.messages
    replay.pageIndex = 0
    // A broker that sets `more` with an empty page would replay forever.
    replay.more = recovery.more === true && recovery.messages.length > 0
    if (first) {
      const moved = recovery.gap !== undefined || recovery.epoch !== since?.epoch || recovery.offset !== since.offset
      if (moved || !replay.continues) {
        connection.send(subscribedFrame(channel, recovery.epoch, recovery.offset, replay.rid, recovery.gap))
      }
    } else if (recovery.gap !== undefined) {
      connection.send(gapFrame(channel, recovery.gap, recovery.epoch, recovery.offset))
    } else {
      return
    }
    subscription.epoch = recovery.epoch
    subscription.offset = recovery.offset
  }

  /** The replay is done: sends the live messages that arrived meanwhile and switches to live delivery. */
  #goLive(subscription: Subscription, replay: SubscriptionReplay): void {
    subscription.replay = undefined
    for (const message of replay.backlog) this.#deliver(subscription, message, this.#frames.frameOf(message, this.#encode))
    if (this.#presence?.tracks(subscription.channel)) this.#joinPresence(subscription, this.#presence, replay.continues)
  }

  /**
   * Counts a live subscription as a member of its presence channel, and tells it who is there:
   * the whole set (`sync`), or for a poll that continues, only the deltas since its last poll.
   */
  #joinPresence(subscription: Subscription, presence: PresenceTracker, continues: boolean): void {
    const { connection, channel } = subscription
    const member = connection.identity?.userId ?? connection.session
    const missed = continues ? this.#mailboxes.take(connection.session, channel) : undefined
    // Announced to the others before this one counts, so it never hears of its own join.
    presence.join(channel, member)
    subscription.member = member
    if (missed) {
      for (const frame of missed) connection.send(frame)
      subscription.presenceSent = true
      return
    }
    const sync = presence.syncFrame(channel, member)
    const send = (frame: OutFrame): void => {
      // A shared presence answers once the broker holds this member: not to a subscription that ended meanwhile.
      if (subscription.member !== member || !connection.isOpen) return
      connection.send(frame)
      subscription.presenceSent = true
    }
    if (sync instanceof OutFrame) send(sync)
    else void sync.then(send)
  }

  /** A presence delta, to the channel's live subscribers and to poll clients between polls. */
  #broadcastPresence(channel: string, frame: OutFrame): void {
    // Never to the joiner (protocol.md 2.4): a shared presence announces a join after its subscription counts.
    const delta = frame.frame
    const joiner = delta.type === 'presence' && delta.action === 'join' ? delta.member.id : undefined
    for (const subscription of this.#channels.get(channel)?.subscribers ?? []) {
      // A subscription still recovering gets the whole set once it is live.
      if (subscription.member !== undefined && subscription.member !== joiner) subscription.connection.send(frame)
    }
    this.#mailboxes.post(channel, frame)
  }

  #localChannel(name: string): LocalChannel {
    const existing = this.#channels.get(name)
    if (existing) {
      clearTimeout(existing.linger)
      existing.linger = undefined
      this.#lingering.delete(existing)
      return existing
    }
    const local: LocalChannel = {
      name,
      subscribers: new Set(),
      ready: Promise.resolve(),
      stop: undefined,
      linger: undefined,
      released: false,
    }
    local.ready = this.#options.broker.subscribe(name, (message) => this.#fanOut(local, message)).then(
      (stop) => {
        // The last subscriber may have left while the broker was subscribing.
        if (local.released) stop()
        else local.stop = stop
      },
      (error: unknown) => {
        // Forget the failed channel so the next subscribe tries again.
        this.#release(local)
        throw error
      },
    )
    // Failures reach the subscribers through their recoveries; don't report them twice.
    local.ready.catch(() => {})
    this.#channels.set(name, local)
    return local
  }

  #fanOut(local: LocalChannel, message: StoredMessage): void {
    // Built on first use, then shared: serialized once per encoding, not per subscriber.
    let frame: OutFrame | null | undefined
    for (const subscription of local.subscribers) {
      const { replay } = subscription
      if (replay) {
        const { backlog } = replay
        if (backlog.length >= REPLAY_BACKLOG_MESSAGES) {
          // Bounded: these are in history, where the replay fetches them instead.
          backlog.length = 0
          replay.backlogDropped = true
        }
        backlog.push(message)
        continue
      }
      // Cached too, for connections that replay this message soon after (a reconnect).
      if (frame === undefined) frame = this.#frames.frameOf(message, this.#encode)
      this.#deliver(subscription, message, frame)
    }
  }

  /**
   * Sends one message to a live subscription, keeping per-channel order:
   * duplicates (replay overlapping the backlog) are dropped, and a jump in
   * offset or epoch, which a correct broker never produces, is announced
   * with a `gap` instead of being passed off as continuous.
   */
  #deliver(subscription: Subscription, message: StoredMessage, shared: OutFrame | null): void {
    const { connection, channel } = subscription
    const sameEpoch = message.epoch === subscription.epoch
    if (sameEpoch && message.offset <= subscription.offset) return
    if (!sameEpoch || message.offset !== subscription.offset + 1) {
      const reason = sameEpoch ? 'history-exhausted' : 'epoch-changed'
      connection.send(gapFrame(channel, reason, message.epoch, message.offset - 1))
    }
    subscription.epoch = message.epoch
    subscription.offset = message.offset
    // Data that cannot be serialized is lost to every subscriber; say so rather than skip an offset.
    connection.send(shared ?? gapFrame(channel, 'history-exhausted', message.epoch, message.offset))
  }

  /** The message frame, encoded; null when its data can't be serialized. */
  readonly #encode = (message: StoredMessage): OutFrame | null => {
    const frame = messageFrame(message)
    try {
      void frame.json
      return frame
    } catch (error) {
      this.#options.logger.error(`pushline: message ${message.channel} ${message.offset} is not JSON`, error)
      return null
    }
  }

  #detach(subscription: Subscription): void {
    subscription.active = false
    subscription.replay = undefined
    const { connection, channel, local, member } = subscription
    if (member !== undefined) {
      subscription.member = undefined
      this.#presence?.leave(channel, member)
    }
    const table = this.#connections.get(connection)
    if (subscriptionOf(table, channel) === subscription) this.#connections.set(connection, withoutSubscription(table, channel))
    local.subscribers.delete(subscription)
    if (local.subscribers.size === 0) this.#linger(local)
  }

  /**
   * The last local subscriber left: keep the broker subscription a while. A
   * message published meanwhile reaches nobody here, and nothing is lost: the
   * broker keeps it in history, and whoever subscribes next recovers it from
   * their position as usual.
   */
  #linger(local: LocalChannel): void {
    if (local.released || local.linger !== undefined) return
    const { brokerLingerMs } = this.#options
    if (brokerLingerMs <= 0 || this.#closed) {
      this.#release(local)
      return
    }
    local.linger = setTimeout(() => {
      local.linger = undefined
      if (local.subscribers.size === 0) this.#release(local)
    }, brokerLingerMs)
    // A lingering channel must not keep the process alive.
    local.linger.unref()
    // Bounded: a client touching many channel names can't make the hub keep them all for the linger.
    this.#lingering.add(local)
    if (this.#lingering.size > MAX_LINGERING_CHANNELS) {
      for (const oldest of this.#lingering) {
        this.#release(oldest)
        break
      }
    }
  }

  /** The last local subscriber left (or the broker failed): stop the broker subscription. */
  #release(local: LocalChannel): void {
    if (local.released) return
    local.released = true
    clearTimeout(local.linger)
    local.linger = undefined
    this.#lingering.delete(local)
    if (this.#channels.get(local.name) === local) this.#channels.delete(local.name)
    local.stop?.()
    local.stop = undefined
  }

  readonly #beat = (): void => {
    const now = Date.now()
    const deadlineMs = this.#options.heartbeatMs + this.#options.heartbeatGraceMs
    for (const connection of this.#connections.keys()) {
      if (connection.isResponsive(now, deadlineMs)) {
        if (connection.wantsPing) connection.sendAlone(PING_ALONE)
      } else {
        connection.terminate()
        this.remove(connection)
      }
    }
  }

  /** Slow consumer: its unsent output passed the limit. Drop it; it resumes from history on reconnect. */
  readonly #checkBacklog = (connection: Connection): void => {
    if (connection.bufferedBytes() <= this.#options.maxBufferedBytes) {
      // What was written may have gone to the kernel at once: no drain event will come for it.
      this.#resumeReplays(connection)
      return
    }
    connection.terminate()
    this.remove(connection)
  }
}

function isPoll(connection: Connection): boolean {
  return connection.transport === 'long-polling' || connection.transport === 'short-polling'
}
