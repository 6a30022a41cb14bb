import type { PresenceFrame, PresenceMemberInfo } from '../../protocol/frames.js'
import type { BrokerPresence, PresenceWatch } from '../brokers/broker.js'
import type { PresenceMember } from '../options.js'
import { OutFrame } from './out-frame.js'

export interface PresenceOptions {
  /** Whether a channel tracks presence (the `presence` option). */
  tracks: (channel: string) => boolean
  /** How long a member with no subscription left stays a member (`presenceGraceMs`). */
  graceMs: number
  /** Sends a delta to the channel's live subscribers (and the hub's poll mailboxes). */
  broadcast: (channel: string, frame: OutFrame) => void
  /**
   * The broker's presence, when it keeps one for every node: then this process holds its
   * members there, and the deltas and `sync` frames its subscribers get are those of all nodes.
   */
  shared?: BrokerPresence | undefined
  /** Reports a failed call to the shared presence (Redis away: the broker logs the outage too). */
  onError: (message: string, error: unknown) => void
}

interface Member {
  readonly id: string
  readonly joinedAt: number
  /** Live subscriptions of this member to the channel. */
  connections: number
  /** Runs while the member has no subscription: it leaves when it fires. */
  leaving: ReturnType<typeof setTimeout> | undefined
  /** With a shared presence: settles once the broker holds the member. */
  held?: Promise<void>
}

/**
 * Who is subscribed to each presence channel in this process. A member is a user (or an
 * anonymous session) with any number of subscriptions; it joins with its first and leaves a
 * grace period after its last, so that a reconnect or the gap between two polls does not flap.
 * Every change goes out as one small delta frame, never as the member list.
 *
 * With a broker that keeps presence for every node (`Broker.presence`), this process holds
 * its members in the broker instead of announcing them, and watches each channel it has
 * members in: the deltas it sends are the broker's (joins and leaves on any node), and a
 * `sync` lists the members of all nodes. The grace period stays per process.
 */
export class PresenceTracker {
  readonly #options: PresenceOptions
  /** channel → members in order of joining. */
  readonly #channels = new Map<string, Map<string, Member>>()
  /** With a shared presence: channel → its watch, while this process has members there. */
  readonly #watches = new Map<string, Promise<PresenceWatch | undefined>>()

  constructor(options: PresenceOptions) {
    this.#options = options
  }

  tracks(channel: string): boolean {
    return this.#options.tracks(channel)
  }

  /** A subscription of `id` went live; announces the member if it is new. */
  join(channel: string, id: string, now = Date.now()): void {
    let members = this.#channels.get(channel)
    if (!members) this.#channels.set(channel, (members = new Map()))
    const member = members.get(id)
    if (member) {
      member.connections += 1
      clearTimeout(member.leaving)
      member.leaving = undefined
      return
    }
    const joined: Member = { id, joinedAt: now, connections: 1, leaving: undefined }
    members.set(id, joined)
    const { shared } = this.#options
    if (!shared) return this.#options.broadcast(channel, deltaFrame(channel, 'join', joined))
    // Watching first, so that this join, announced by the broker, is heard here too.
    joined.held = this.#watch(channel, shared)
      .then(() => shared.join(channel, id))
      .catch((error: unknown) => this.#options.onError(`pushline: presence of ${channel} not shared`, error))
  }

  /** A subscription of `id` ended; the member leaves once the grace period passes without a new one. */
  leave(channel: string, id: string): void {
    const members = this.#channels.get(channel)
    const member = members?.get(id)
    if (!members || !member || member.connections === 0) return
    member.connections -= 1
    if (member.connections > 0) return
    const gone = (): void => {
      if (members.get(id) !== member || member.connections > 0) return
      members.delete(id)
      if (members.size === 0 && this.#channels.get(channel) === members) this.#channels.delete(channel)
      const { shared } = this.#options
      if (!shared) return this.#options.broadcast(channel, deltaFrame(channel, 'leave', member))
      shared.leave(channel, id).catch((error: unknown) => this.#options.onError(`pushline: presence of ${channel} not shared`, error))
      if (!this.#channels.has(channel)) this.#unwatch(channel)
    }
    if (this.#options.graceMs <= 0) return gone()
    member.leaving = setTimeout(gone, this.#options.graceMs)
    // A pending leave must not keep the process alive.
    member.leaving.unref()
  }

  /**
   * The `sync` frame of a channel for member `id`: every member (those within their grace period
   * too); with a shared presence, once the broker holds `id`, every member on every node.
   */
  syncFrame(channel: string, id: string): OutFrame | Promise<OutFrame> {
    const local = (): OutFrame => syncFrameOf(channel, [...(this.#channels.get(channel)?.values() ?? [])].map(memberInfo))
    const watch = this.#watches.get(channel)
    if (!this.#options.shared || !watch) return local()
    const held = this.#channels.get(channel)?.get(id)?.held
    return Promise.all([watch, held]).then(([view]) => {
      if (!view) return local()
      // The broker's announcement of a member this process holds may still be on its way: the
      // members here are on the channel all the same (and the joiner never hears its own join).
      const members = view.members()
      const known = new Set(members.map((member) => member.id))
      for (const member of this.#channels.get(channel)?.values() ?? []) if (!known.has(member.id)) members.push(memberInfo(member))
      return syncFrameOf(channel, members)
    })
  }

  members(channel: string): PresenceMember[] {
    return [...(this.#channels.get(channel)?.values() ?? [])].map(({ id, connections, joinedAt }) => ({ id, connections, joinedAt }))
  }

  /** Stops the grace timers and the watches (server shutdown). */
  clear(): void {
    for (const members of this.#channels.values()) for (const member of members.values()) clearTimeout(member.leaving)
    this.#channels.clear()
    for (const channel of [...this.#watches.keys()]) this.#unwatch(channel)
  }

  /** Watches `channel` in the shared presence (once); undefined when that failed (then presence there is this process's). */
  #watch(channel: string, shared: BrokerPresence): Promise<PresenceWatch | undefined> {
    let watch = this.#watches.get(channel)
    if (!watch) {
      watch = shared
        .watch(channel, ({ action, member }) => this.#options.broadcast(channel, deltaFrame(channel, action, member)))
        .catch((error: unknown) => {
          this.#options.onError(`pushline: presence of ${channel} not shared`, error)
          // The next member to join here tries again.
          if (this.#watches.get(channel) === watch) this.#watches.delete(channel)
          return undefined
        })
      this.#watches.set(channel, watch)
    }
    return watch
  }

  #unwatch(channel: string): void {
    const watch = this.#watches.get(channel)
    this.#watches.delete(channel)
    void watch?.then((view) => view?.stop())
  }
}

function syncFrameOf(channel: string, members: PresenceMemberInfo[]): OutFrame {
  const frame: PresenceFrame = { type: 'presence', channel, action: 'sync', members }
  return new OutFrame(frame)
}

function memberInfo({ id, joinedAt }: PresenceMemberInfo): PresenceMemberInfo {
  return { id, joinedAt }
}

function deltaFrame(channel: string, action: 'join' | 'leave', member: PresenceMemberInfo): OutFrame {
  return new OutFrame({ type: 'presence', channel, action, member: memberInfo(member) })
}

/** Deltas kept per channel for a poll client between two polls; past this it gets a `sync` instead. */
const MAILBOX_LIMIT = 64

interface Mailbox {
  /** channel → deltas since the poll ended; null once more than the limit arrived. */
  readonly channels: Map<string, OutFrame[] | null>
  readonly expiry: ReturnType<typeof setTimeout>
}

/**
 * Presence deltas for poll clients between two polls. A poll is a connection only while it is
 * held, so a `join` that happens between the answer and the next poll would reach nobody; the
 * mailbox keeps it, by the poll's session, for the next poll of that session (for the grace
 * period, after which the next poll gets a `sync` as a new subscriber does).
 */
export class PresenceMailboxes {
  readonly #keepMs: number
  readonly #bySession = new Map<string, Mailbox>()
  /** channel → sessions whose mailbox takes its deltas. */
  readonly #byChannel = new Map<string, Set<string>>()

  constructor(keepMs: number) {
    this.#keepMs = keepMs
  }

  /** A poll of `session` ended while subscribed to these presence channels. */
  open(session: string, channels: readonly string[]): void {
    this.#drop(session)
    if (channels.length === 0) return
    const expiry = setTimeout(() => this.#drop(session), this.#keepMs)
    expiry.unref()
    const mailbox: Mailbox = { channels: new Map(), expiry }
    for (const channel of channels) {
      mailbox.channels.set(channel, [])
      let sessions = this.#byChannel.get(channel)
      if (!sessions) this.#byChannel.set(channel, (sessions = new Set()))
      sessions.add(session)
    }
    this.#bySession.set(session, mailbox)
  }

  /** Keeps a delta of `channel` for every session away from it. */
  post(channel: string, frame: OutFrame): void {
    for (const session of this.#byChannel.get(channel) ?? []) {
      const mailbox = this.#bySession.get(session)
      const frames = mailbox?.channels.get(channel)
      if (!mailbox || !frames) continue
      if (frames.length < MAILBOX_LIMIT) frames.push(frame)
      else mailbox.channels.set(channel, null)
    }
  }

  /**
   * The deltas `session` missed on `channel` since its last poll, and forgets them; undefined
   * when they are unknown (no mailbox, or too many): then the client needs a `sync`.
   */
  take(session: string, channel: string): OutFrame[] | undefined {
    const mailbox = this.#bySession.get(session)
    const frames = mailbox?.channels.get(channel)
    if (!mailbox || frames === undefined) return undefined
    mailbox.channels.delete(channel)
    const sessions = this.#byChannel.get(channel)
    sessions?.delete(session)
    if (sessions?.size === 0) this.#byChannel.delete(channel)
    if (mailbox.channels.size === 0) this.#drop(session)
    return frames ?? undefined
  }

  clear(): void {
    for (const session of [...this.#bySession.keys()]) this.#drop(session)
  }

  #drop(session: string): void {
    const mailbox = this.#bySession.get(session)
    if (!mailbox) return
    clearTimeout(mailbox.expiry)
    this.#bySession.delete(session)
    for (const channel of mailbox.channels.keys()) {
      const sessions = this.#byChannel.get(channel)
      sessions?.delete(session)
      if (sessions?.size === 0) this.#byChannel.delete(channel)
    }
  }
}
