import type { PresenceFrame, PresenceMemberInfo } from '../../protocol/frames.js'
import type { PresenceMember } from '../options.js'
import { OutFrame } from './out-frame.js'

export interface PresenceOptions {
  /** Whether a channel tracks presence (the `presence` option). */
  tracks: (channel: string) => boolean
  /** How long a member with no subscription left stays a member (`presenceGraceMs`). */
  graceMs: number
  /** Sends a delta to the channel's live subscribers (and the hub's poll mailboxes). */
  broadcast: (channel: string, frame: OutFrame) => void
}

interface Member {
  readonly id: string
  readonly joinedAt: number
  /** Live subscriptions of this member to the channel. */
  connections: number
  /** Runs while the member has no subscription: it leaves when it fires. */
  leaving: ReturnType<typeof setTimeout> | undefined
}

/**
 * Who is subscribed to each presence channel in this process. A member is a user (or an
 * anonymous session) with any number of subscriptions; it joins with its first and leaves a
 * grace period after its last, so that a reconnect or the gap between two polls does not flap.
 * Every change goes out as one small delta frame, never as the member list.
 */
export class PresenceTracker {
  readonly #options: PresenceOptions
  /** channel → members in order of joining. */
  readonly #channels = new Map<string, Map<string, Member>>()

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
    this.#options.broadcast(channel, deltaFrame(channel, 'join', joined))
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
      this.#options.broadcast(channel, deltaFrame(channel, 'leave', member))
    }
    if (this.#options.graceMs <= 0) return gone()
    member.leaving = setTimeout(gone, this.#options.graceMs)
    // A pending leave must not keep the process alive.
    member.leaving.unref()
  }

  /** The `sync` frame of a channel: every member (those within their grace period too). */
  syncFrame(channel: string): OutFrame {
    const members = [...(this.#channels.get(channel)?.values() ?? [])].map(memberInfo)
    const frame: PresenceFrame = { type: 'presence', channel, action: 'sync', members }
    return new OutFrame(frame)
  }

  members(channel: string): PresenceMember[] {
    return [...(this.#channels.get(channel)?.values() ?? [])].map(({ id, connections, joinedAt }) => ({ id, connections, joinedAt }))
  }

  /** Stops the grace timers (server shutdown). */
  clear(): void {
    for (const members of this.#channels.values()) for (const member of members.values()) clearTimeout(member.leaving)
    this.#channels.clear()
  }
}

function memberInfo({ id, joinedAt }: Member): PresenceMemberInfo {
  return { id, joinedAt }
}

function deltaFrame(channel: string, action: 'join' | 'leave', member: Member): OutFrame {
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
