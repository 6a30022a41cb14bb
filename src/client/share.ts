import { PushError } from '../errors.js'
import type { ClientFrame, HelloFrame, ServerFrame, TransportName } from '../protocol/frames.js'
import { parseId, type CursorEntry, type Position } from '../protocol/position.js'
import type { StreamTransport, Transport, TransportContext, TransportFactory } from '../transports/transport.js'

// One connection for all tabs of an origin. Per server URL, every client with `share` set asks for
// the Web Lock `pushline:leader:<url>`; the holder leads. The leader's client runs its transports
// as usual, through a hub that relays every server frame to the other tabs over the
// BroadcastChannel `pushline:<url>` and sends their client frames on its connection. A follower's
// client runs a relay transport (duplex) to the leader. Each tab's core keeps its own positions and
// drops duplicates by offset (protocol.md 4.1), so a tab that subscribes with an older `since`
// makes the server replay and the others drop what they have. When the leader goes (its lock is
// released: tab closed, crashed, or client closed), the next tab in the lock's queue leads:
// its relay closes with RECONNECT, its core reopens at once on the real transports and resubscribes
// with its positions, and once connected it announces itself; the followers then reopen their
// relay and resubscribe with their positions. Nothing is lost and nothing delivered twice.

/** What a client's core asks of its share: one per client, made by a {@link ShareFactory}. */
export interface TabShare {
  /**
   * The factory to create this connection attempt with: `factory` itself, serving the other tabs,
   * while this tab leads; else a relay to the leading tab.
   */
  wrap(factory: TransportFactory): TransportFactory
  /** The client closed, or its page is hidden: give up leadership, if held, and stop listening to the other tabs. */
  close(): void
}

/** What the `share` option takes (`share: tabShare()`); undefined: no sharing on this platform. */
export type ShareFactory = (url: string) => TabShare | undefined

/** What pushline uses of `navigator.locks`. */
export interface LockManagerLike {
  request(name: string, options: { signal?: AbortSignal }, callback: () => Promise<void>): Promise<unknown>
}

/** What pushline uses of a BroadcastChannel. */
export interface BroadcastChannelLike {
  onmessage: ((event: { data: any }) => void) | null
  postMessage(message: unknown): void
  close(): void
}

export type BroadcastChannelConstructor = new (name: string) => BroadcastChannelLike

export interface TabShareOptions {
  /**
   * Web Locks, for electing the leader and noticing tabs that went away.
   * @default globalThis.navigator.locks
   */
  locks?: LockManagerLike | undefined
  /**
   * BroadcastChannel implementation, to talk between tabs.
   * @default globalThis.BroadcastChannel
   */
  BroadcastChannel?: BroadcastChannelConstructor | undefined
}

/** Messages between tabs (one-letter fields: they survive minification). */
type TabMessage =
  /** Leader → all: a new connection is open; relays reopen (and so resubscribe). */
  | { t: 'lead' }
  /** Relay → leader: serve relay `r`. */
  | { t: 'join'; r: string }
  /** Leader → relay `r`: the connection's hello, and the name of the transport carrying it. */
  | { t: 'hello'; r: string; h: HelloFrame; n: TransportName }
  /** Relay `r` → leader: a client frame; its `rid`, if any, is prefixed `r:`. */
  | { t: 'c'; r: string; m: ClientFrame }
  /** Leader → relays: a server frame. */
  | { t: 's'; m: ServerFrame }

/** A follower's relay to the leader (its `_` properties are shortened by the build, tsup.config.ts). */
interface Relay {
  /** Reopen: the leader changed, or this tab leads now. */
  _end(): void
  _receive(message: TabMessage): void
}

/** Stream transports take a cursor, and reopen on `update()`. */
const isStream = (transport: Transport): transport is StreamTransport => 'update' in transport

const ridOf = (frame: object): string | undefined => (frame as { rid?: string }).rid
const channelOf = (frame: object): string => (frame as { channel?: string }).channel as string

/**
 * Shares one connection among the tabs of this origin (per server URL): `share: tabShare()`.
 * Where Web Locks or BroadcastChannel are missing (Node, old browsers), each client keeps its own
 * connection.
 */
export function tabShare({
  locks = globalThis.navigator?.locks as LockManagerLike | undefined,
  BroadcastChannel: Channel = globalThis.BroadcastChannel as BroadcastChannelConstructor | undefined,
}: TabShareOptions = {}): ShareFactory {
  return (url) => {
    if (!locks || !Channel) return undefined
    const lockManager = locks
    /** Open from the first `wrap` until `close`: a page in the back-forward cache must hold none. */
    let bus: BroadcastChannelLike | undefined
    /** Ends the requests for the relays' tab locks, by which a leader notices relays that went away. */
    let watch: AbortController | undefined
    const post = (message: TabMessage): void => bus?.postMessage(message)
    const tabLock = (id: string): string => 'pushline:tab:' + id
    let leading = false
    /** Gives up the leader lock, or the request for it; set while either is held. */
    let release: (() => void) | undefined
    /** This client's relay, while it follows. */
    let relay: Relay | undefined

    // ---- leader: the hub between the core and the real transport ----

    /** The real transport of the connection, once it said hello, and its hello. */
    let active: Transport | undefined
    let hello: HelloFrame | undefined
    /** The leader core's subscriptions. */
    let ownCursor: () => CursorEntry[] = () => []
    /** Channels of each follower relay. */
    const tabs = new Map<string, Set<string>>()
    /** Per channel, the position the connection delivered last. */
    const positions = new Map<string, Position>()
    /** Stream transports: older positions tabs asked to replay from, until a stream resumed there. */
    const replays = new Map<string, Position>()

    const wanted = (channel: string): boolean =>
      ownCursor().some((entry) => entry.channel === channel) || [...tabs.values()].some((set) => set.has(channel))

    const unsubscribe = (channel: string): void => {
      positions.delete(channel)
      replays.delete(channel)
      active?.send({ type: 'unsubscribe', channel })
    }

    /** Relay `r` went away (its tab lock was released): its channels no one else wants end. */
    const leave = (r: string): void => {
      const channels = tabs.get(r)
      tabs.delete(r)
      for (const channel of channels ?? []) if (!wanted(channel)) unsubscribe(channel)
    }

    const tabChannels = (r: string): Set<string> => {
      let channels = tabs.get(r)
      if (!channels) {
        tabs.set(r, (channels = new Set()))
        // Granted once the relay's tab lets go of it; given up when this client closes.
        lockManager.request(tabLock(r), { signal: watch?.signal }, async () => leave(r)).catch(() => {})
      }
      return channels
    }

    /** A client frame of relay `r`. Without a connection it is dropped: relays resubscribe on `lead`. */
    const fromTab = (r: string, frame: ClientFrame): void => {
      if (!active) return
      const channels = tabChannels(r)
      if (frame.type === 'subscribe') {
        const { channel, rid } = frame
        const had = wanted(channel)
        channels.add(channel)
        if (!isStream(active)) return active.send(frame)
        // A stream carries a cursor: reopen it only when the channel is new, or to replay from an
        // older position; else the connection is already where this tab wants to be (what it
        // delivered, not what a pending reopen asked for: messages up to `since` are dropped).
        const since = frame.since === undefined ? undefined : parseId(frame.since)
        const at = had ? positions.get(channel) : undefined
        if (at && (!since || (since.epoch === at.epoch && since.offset >= at.offset))) {
          post({ t: 's', m: { type: 'subscribed', channel, epoch: at.epoch, offset: since ? since.offset : at.offset, rid } })
        } else {
          if (since) replays.set(channel, since)
          active.update()
        }
      } else if (frame.type === 'unsubscribe') {
        channels.delete(frame.channel)
        if (!wanted(frame.channel)) unsubscribe(frame.channel)
      } else if (frame.type === 'publish') active.send(frame)
    }

    /** Stream cursor: every tab's channels, each from the oldest position a tab still needs. */
    const union = (mine: CursorEntry[]): CursorEntry[] => {
      const entries = new Map(mine.map((entry) => [entry.channel, entry]))
      for (const channels of tabs.values()) for (const channel of channels) if (!entries.has(channel)) entries.set(channel, { channel })
      for (const channel of entries.keys()) {
        for (const at of [positions.get(channel), replays.get(channel)]) {
          const { position: mine } = entries.get(channel) as CursorEntry
          if (at && !(mine?.epoch === at.epoch && mine.offset < at.offset)) entries.set(channel, { channel, position: at })
        }
      }
      return [...entries.values()]
    }

    const serve = (factory: TransportFactory): TransportFactory => ({
      name: factory.name,
      create(context: TransportContext): Transport {
        const real: Transport = factory.create({
          ...context,
          cursor: () => union(context.cursor()),
          onFrame(frame) {
            if (frame.type === 'hello') {
              // The first hello of a transport that will be the connection (also an upgrade probe's).
              if (real !== active && frame.transports.includes(real.name)) {
                active = real
                hello = frame
                ownCursor = context.cursor
                tabs.clear()
                positions.clear()
                replays.clear()
                post({ t: 'lead' })
              }
            } else if (real === active && frame.type !== 'close') {
              post({ t: 's', m: frame })
              if (frame.type === 'message') {
                const at = parseId(frame.id)
                if (at) positions.set(frame.channel, at)
              } else if (frame.type === 'subscribed' || frame.type === 'gap') {
                const { channel, epoch, offset } = frame
                positions.set(channel, { epoch, offset })
                const replay = replays.get(channel)
                if (replay && (replay.epoch !== epoch || offset <= replay.offset)) replays.delete(channel)
              }
            }
            // Answers to followers (their rids are `<relay>:<rid>`) are theirs only.
            if (!ridOf(frame)?.includes(':')) context.onFrame(frame)
          },
        })
        const close = (): void => {
          if (real === active) active = hello = undefined
          real.close()
        }
        // The server subscription ends with the last tab that wants it.
        const send = (frame: ClientFrame): void => {
          if (frame.type !== 'unsubscribe' || real !== active || !wanted(frame.channel)) real.send(frame)
        }
        // The core only sends; the hub reopens a stream itself (`active.update()`).
        return { name: real.name, open: () => real.open(), close, send }
      },
    })

    // ---- follower: a duplex transport to the leader ----

    const follow = (factory: TransportFactory): TransportFactory => ({
      name: factory.name,
      create(context: TransportContext): Transport {
        let closed = false
        const transport: Transport & { name: TransportName } = {
          name: factory.name,
          open() {
            // An upgrade probe while the relay is open: fail it, there is nothing better to find.
            if (relay) return context.onClose(new PushError('TRANSPORT_FAILED', 'shared', { transport: factory.name }))
            const id = Math.random().toString(36).slice(2, 10)
            const prefix = id + ':'
            /** This relay's channels: whether their `subscribed` arrived. */
            const want = new Map<string, boolean>()
            let said = false
            let joined = false
            const join = (): void => {
              if (joined) post({ t: 'join', r: id })
            }
            const me: Relay = {
              _end() {
                if (closed) return
                transport.close()
                context.onClose(new PushError('RECONNECT', 'leader changed', { transport: transport.name }))
              },
              _receive(message) {
                if (message.t === 'lead') {
                  if (said) me._end()
                  else join()
                } else if (message.t === 'hello') {
                  if (message.r !== id || said) return
                  said = true
                  // The relay goes by the name of the leader's transport: that is what the server offers.
                  transport.name = message.n
                  context.onFrame(message.h)
                } else if (message.t === 's' && said) {
                  let frame = message.m
                  const rid = ridOf(frame)
                  if (rid !== undefined) {
                    if (!rid.startsWith(prefix)) return // another tab's answer
                    frame = { ...frame, rid: rid.slice(prefix.length) } as ServerFrame
                  }
                  const channel = channelOf(frame)
                  // Messages of a channel only once its `subscribed` arrived: another tab's
                  // subscription may deliver from further on than this tab's position.
                  if (frame.type === 'subscribed') {
                    if (!want.has(channel)) return
                    want.set(channel, true)
                  } else if ((frame.type === 'message' || frame.type === 'gap') && !want.get(channel)) return
                  context.onFrame(frame)
                }
              },
            }
            relay = me
            transport.send = (frame) => {
              if (frame.type === 'pong' || closed) return // the leader answers pings itself
              if (frame.type === 'subscribe') want.set(frame.channel, false)
              if (frame.type === 'unsubscribe') want.delete(frame.channel)
              const rid = ridOf(frame)
              post({ t: 'c', r: id, m: rid === undefined ? frame : ({ ...frame, rid: prefix + rid } as ClientFrame) })
            }
            transport.close = () => {
              closed = true
              if (relay === me) relay = undefined
              releaseTab?.()
            }
            // Holding its tab lock tells the leader that this relay is alive; join once it is held.
            let releaseTab: (() => void) | undefined
            void lockManager.request(tabLock(id), {}, () =>
              new Promise<void>((resolve) => {
                releaseTab = resolve
                joined = !closed
                if (closed) resolve()
                else join()
              }),
            )
          },
          close() {
            closed = true
          },
          send() {},
        }
        return transport
      },
    })

    const onMessage = ({ data }: { data: TabMessage }): void => {
      if (!leading) return relay?._receive(data)
      if (data.t === 'join') {
        tabChannels(data.r)
        if (hello && active) post({ t: 'hello', r: data.r, h: hello, n: active.name })
      } else if (data.t === 'c') fromTab(data.r, data.m)
    }

    /**
     * Opens the channel and queues for the leader lock (once per connect, and again after a
     * pageshow); a relay in use reopens when the lock is granted.
     */
    const claim = (): void => {
      if (release) return
      if (!bus) {
        bus = new Channel('pushline:' + url)
        bus.onmessage = onMessage
        watch = new AbortController()
      }
      const controller = new AbortController()
      release = () => controller.abort()
      lockManager
        .request('pushline:leader:' + url, { signal: controller.signal }, () =>
          new Promise<void>((resolve) => {
            leading = true
            release = () => {
              leading = false
              resolve()
            }
            relay?._end()
          }),
        )
        .catch(() => {}) // aborted
    }

    return {
      wrap(factory) {
        claim()
        return (leading ? serve : follow)(factory)
      },
      close() {
        release?.()
        release = undefined
        // Chromium evicts a cached page that a BroadcastChannel message reaches, and one holding or
        // waiting for a lock another tab wants: pagehide closes the client's share, pageshow claims again.
        bus?.close()
        bus = undefined
        watch?.abort()
        tabs.clear()
      },
    }
  }
}
