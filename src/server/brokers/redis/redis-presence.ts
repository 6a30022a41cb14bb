import { randomBytes } from 'node:crypto'
import type { PresenceMemberInfo } from '../../../protocol/frames.js'
import type { BrokerPresence, PresenceChange, PresenceWatch } from '../broker.js'
import { channelKeys, type ChannelKeys } from './keys.js'
import { PRESENCE_SCRIPT, type LuaScript } from './scripts.js'

/** What RedisPresence needs of its broker: scripts, and the subscriber connection. */
export interface PresenceConnection {
  readonly keyPrefix: string
  readonly notifyCommand: 'PUBLISH' | 'SPUBLISH'
  run(script: LuaScript, keys: string[], args: string[]): Promise<unknown>
  subscribe(channel: string, listener: (payload: string) => void): Promise<void>
  unsubscribe(channel: string): void
  logError(message: string, error?: unknown): void
}

interface Watched {
  readonly keys: ChannelKeys
  /** Member id → member, in order of joining once sorted. */
  members: Map<string, PresenceMemberInfo>
  readonly listeners: Set<(change: PresenceChange) => void>
  /** Changes that arrived while the first read ran, applied after it in order. */
  early: PresenceChange[] | undefined
  /** Changes heard so far: a re-read during which one arrived may be older or newer than it, and is not used. */
  heard: number
  ready: Promise<void>
}

/**
 * Presence in Redis for every node (keys.ts, PRESENCE_SCRIPT). Each node renews the holds of
 * its members every third of `ttlMs`; a node killed with -9 stops renewing, and its members
 * are gone (with a `leave` each, from the next renewal of any other node) within `ttlMs`.
 * A channel watched here is also read again at each renewal, so a change announced while
 * the subscriber connection was down is not missed for longer than that.
 */
export class RedisPresence implements BrokerPresence {
  readonly #connection: PresenceConnection
  /** How long a hold lives after its renewal: two renewal periods, so one late renewal is no leave. */
  readonly #holdMs: number
  /** Random, of fixed length: holds are `<node><member id>`. */
  readonly #node = randomBytes(8).toString('hex')
  /** channel → member ids this node holds there. */
  readonly #holds = new Map<string, Set<string>>()
  readonly #watched = new Map<string, Watched>()
  readonly #renewal: ReturnType<typeof setInterval>

  constructor(connection: PresenceConnection, ttlMs: number) {
    this.#connection = connection
    // Renewed every third of the TTL and living two thirds: a hold of a node that stopped is
    // expired two thirds in, and swept by another node's renewal at most a third later.
    this.#holdMs = Math.max(2, Math.floor((ttlMs * 2) / 3))
    this.#renewal = setInterval(() => void this.#renew(), Math.max(1, Math.floor(ttlMs / 3)))
    this.#renewal.unref()
  }

  async join(channel: string, id: string): Promise<void> {
    let ids = this.#holds.get(channel)
    if (!ids) this.#holds.set(channel, (ids = new Set()))
    ids.add(id)
    await this.#call(channel, 'hold', [id])
  }

  async leave(channel: string, id: string): Promise<void> {
    const ids = this.#holds.get(channel)
    if (!ids?.delete(id)) return
    if (ids.size === 0) this.#holds.delete(channel)
    await this.#call(channel, 'release', [id])
  }

  async members(channel: string): Promise<PresenceMemberInfo[]> {
    return sorted(readMembers(await this.#call(channel, 'read', [])))
  }

  async watch(channel: string, listener: (change: PresenceChange) => void): Promise<PresenceWatch> {
    const watched = this.#watched.get(channel) ?? this.#startWatching(channel)
    watched.listeners.add(listener)
    const stop = (): void => {
      watched.listeners.delete(listener)
      if (watched.listeners.size > 0 || this.#watched.get(channel) !== watched) return
      this.#watched.delete(channel)
      this.#connection.unsubscribe(watched.keys.presenceNotify)
    }
    try {
      await watched.ready
    } catch (error) {
      stop()
      throw error
    }
    return { members: () => sorted(watched.members), stop }
  }

  /** Stops renewing (the holds expire within the TTL) and forgets every watch. */
  close(): void {
    clearInterval(this.#renewal)
    this.#holds.clear()
    this.#watched.clear()
  }

  #startWatching(channel: string): Watched {
    const keys = channelKeys(this.#connection.keyPrefix, channel)
    const watched: Watched = { keys, members: new Map(), listeners: new Set(), early: [], heard: 0, ready: Promise.resolve() }
    const onChange = (payload: string): void => {
      const change = parseChange(payload)
      if (!change) return this.#connection.logError(`pushline: unreadable presence change on ${keys.presenceNotify}`)
      watched.heard += 1
      if (watched.early) watched.early.push(change)
      else this.#apply(watched, change)
    }
    watched.ready = (async () => {
      // Subscribed before the read, so no change after the read goes unheard.
      await this.#connection.subscribe(keys.presenceNotify, onChange)
      const members = readMembers(await this.#call(channel, 'read', []))
      // Changes heard during the read may be older or newer than it; replayed in order, the set ends right.
      const early = watched.early ?? []
      watched.early = undefined
      for (const change of early) applyChange(members, change)
      watched.members = members
    })()
    this.#watched.set(channel, watched)
    watched.ready.catch(() => {
      if (this.#watched.get(channel) === watched) this.#watched.delete(channel)
    })
    return watched
  }

  /** A change that alters the set goes to the listeners; a repeat (this node hears its own too) does not. */
  #apply(watched: Watched, change: PresenceChange): void {
    if (!applyChange(watched.members, change)) return
    for (const listener of [...watched.listeners]) listener(change)
  }

  /** Renews this node's holds, sweeps expired ones, and re-reads watched channels. */
  async #renew(): Promise<void> {
    const channels = new Set([...this.#holds.keys(), ...this.#watched.keys()])
    await Promise.all(
      [...channels].map(async (channel) => {
        try {
          const ids = [...(this.#holds.get(channel) ?? [])]
          if (ids.length > 0) await this.#call(channel, 'hold', ids)
          const watched = this.#watched.get(channel)
          if (!watched || watched.early) return
          const heard = watched.heard
          const now = readMembers(await this.#call(channel, 'read', []))
          if (watched.heard !== heard) return
          // What the notifications missed (the subscriber was down): leaves, then joins, in order.
          for (const member of watched.members.values()) if (!now.has(member.id)) this.#apply(watched, { action: 'leave', member })
          for (const member of sorted(now)) if (!watched.members.has(member.id)) this.#apply(watched, { action: 'join', member })
        } catch {
          // Redis is away: the broker logs the outage once; the next renewal tries again.
        }
      }),
    )
  }

  #call(channel: string, action: 'hold' | 'release' | 'read', ids: string[]): Promise<unknown> {
    const keys = channelKeys(this.#connection.keyPrefix, channel)
    return this.#connection.run(
      PRESENCE_SCRIPT,
      [keys.presenceHolds, keys.presenceMembers, keys.presenceCounts, keys.presenceNotify],
      [action, this.#node, String(this.#holdMs), this.#connection.notifyCommand, ...ids],
    )
  }
}

/** True when the change altered the set. */
function applyChange(members: Map<string, PresenceMemberInfo>, { action, member }: PresenceChange): boolean {
  if (action === 'leave') return members.delete(member.id)
  if (members.has(member.id)) return false
  members.set(member.id, member)
  return true
}

function sorted(members: Map<string, PresenceMemberInfo>): PresenceMemberInfo[] {
  return [...members.values()].sort((a, b) => a.joinedAt - b.joinedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
}

/** The members hash as HGETALL returns it from a script: id, joinedAt, id, joinedAt, ... */
function readMembers(reply: unknown): Map<string, PresenceMemberInfo> {
  const members = new Map<string, PresenceMemberInfo>()
  const flat = Array.isArray(reply) ? (reply as unknown[]) : []
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const id = String(flat[i])
    members.set(id, { id, joinedAt: Number(flat[i + 1]) })
  }
  return members
}

function parseChange(payload: string): PresenceChange | undefined {
  try {
    const { action, id, joinedAt } = JSON.parse(payload) as { action?: unknown; id?: unknown; joinedAt?: unknown }
    if ((action !== 'join' && action !== 'leave') || typeof id !== 'string' || typeof joinedAt !== 'number') return undefined
    return { action, member: { id, joinedAt } }
  } catch {
    return undefined
  }
}
