/**
 * tabShare with in-memory Web Locks and BroadcastChannel, several "tabs" (clients with their own
 * lock view and channels) and a fake server that follows protocol.md 4 (history, replay by `since`,
 * acks by rid). Real timers: messages between tabs are asynchronous, as in browsers.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { PushClient } from '../../src/client/client.js'
import { tabShare, type BroadcastChannelLike, type LockManagerLike } from '../../src/client/share.js'
import type { ClientFrame, MessageFrame, ServerFrame } from '../../src/protocol/frames.js'
import { parseId } from '../../src/protocol/position.js'
import type { Transport, TransportFactory } from '../../src/transports/transport.js'
import { hello } from './fakes.js'

const URL = 'https://example.test/push'
const EPOCH = 'e1'

// ---- a fake server: one history per channel, connections as duplex transports ----

interface Connection {
  subscriptions: Set<string>
  received: ClientFrame[]
  deliver(frame: ServerFrame): void
}

function fakeServer() {
  const log = new Map<string, MessageFrame[]>()
  const connections = new Set<Connection>()
  const opened: Connection[] = []
  const messages = (channel: string): MessageFrame[] => log.get(channel) ?? (log.set(channel, []), log.get(channel) as MessageFrame[])
  const factory: TransportFactory = {
    name: 'websocket',
    create(context): Transport {
      let open = false
      const connection: Connection = {
        subscriptions: new Set(),
        received: [],
        // Frames of one connection arrive in order, asynchronously.
        deliver: (frame) => queueMicrotask(() => open && context.onFrame(frame)),
      }
      return {
        name: 'websocket',
        open() {
          open = true
          connections.add(connection)
          opened.push(connection)
          connection.deliver(hello({ heartbeatMs: 60_000 }))
        },
        close() {
          open = false
          connections.delete(connection)
        },
        send(frame) {
          connection.received.push(frame)
          if (frame.type === 'subscribe') {
            const history = messages(frame.channel)
            const since = frame.since === undefined ? undefined : parseId(frame.since)
            const from = since ? since.offset : history.length
            connection.subscriptions.add(frame.channel)
            connection.deliver({ type: 'subscribed', channel: frame.channel, epoch: EPOCH, offset: from, rid: frame.rid })
            for (const message of history.slice(from)) connection.deliver(message)
          } else if (frame.type === 'unsubscribe') {
            connection.subscriptions.delete(frame.channel)
          } else if (frame.type === 'publish') {
            const message = publish(frame.channel, frame.data)
            connection.deliver({ type: 'ack', rid: frame.rid, channel: frame.channel, offset: message.offset, id: message.id })
          }
        },
      }
    },
  }
  const publish = (channel: string, data: unknown): MessageFrame => {
    const history = messages(channel)
    const offset = history.length + 1
    const message: MessageFrame = { type: 'message', channel, event: 'message', data, offset, id: `${EPOCH}-${offset}` }
    history.push(message)
    for (const connection of connections) if (connection.subscriptions.has(channel)) connection.deliver(message)
    return message
  }
  return { factory, publish, connections, opened }
}

// ---- in-memory Web Locks and BroadcastChannel, with tabs that can crash ----

function fakeBrowser() {
  interface Request {
    tab: Tab
    grant: () => void
  }
  const held = new Map<string, Tab>()
  const releases = new Map<string, () => void>()
  const queues = new Map<string, Request[]>()
  const channels = new Set<{ tab: Tab; name: string; channel: BroadcastChannelLike }>()

  const next = (name: string): void => {
    if (held.has(name)) return
    const request = queues.get(name)?.shift()
    request?.grant()
  }

  class Tab {
    alive = true
    readonly locks: LockManagerLike = {
      request: (name, { signal }, callback) =>
        new Promise((resolve, reject) => {
          const request: Request = {
            tab: this,
            grant: () => {
              if (!this.alive) return next(name)
              held.set(name, this)
              const release = (): void => {
                if (releases.get(name) !== release) return
                releases.delete(name)
                held.delete(name)
                setTimeout(() => next(name))
              }
              releases.set(name, release)
              callback().then(release, release)
              resolve(undefined)
            },
          }
          signal?.addEventListener('abort', () => {
            const queue = queues.get(name) ?? []
            if (queue.includes(request)) queue.splice(queue.indexOf(request), 1)
            reject(new Error('aborted'))
          })
          queues.set(name, [...(queues.get(name) ?? []), request])
          setTimeout(() => next(name))
        }),
    }
    readonly BroadcastChannel = ((tab: Tab) =>
      class implements BroadcastChannelLike {
        onmessage: ((event: { data: any }) => void) | null = null
        constructor(readonly name: string) {
          channels.add({ tab, name, channel: this })
        }
        close(): void {
          for (const each of channels) if (each.channel === this) channels.delete(each)
        }
        postMessage(message: unknown): void {
          if (!tab.alive) return
          const data = structuredClone(message)
          for (const other of channels) {
            if (other.name === this.name && other.channel !== this && other.tab.alive) {
              setTimeout(() => other.tab.alive && other.channel.onmessage?.({ data }))
            }
          }
        }
      })(this)
    /** The tab is gone: its locks are released, its channels silent. */
    crash(): void {
      this.alive = false
      for (const [name, tab] of held) if (tab === this) releases.get(name)?.()
    }
  }
  return { tab: () => new Tab() }
}

// ---- the tabs under test ----

const clients: PushClient[] = []
afterEach(() => {
  for (const client of clients.splice(0)) client.close()
})

/** A window's lifecycle events, fired by the test. */
function fakeWindow() {
  const listeners = new Set<(event: { type: string }) => void>()
  return {
    addEventListener: (_: string, listener: (event: { type: string }) => void) => void listeners.add(listener),
    removeEventListener: (_: string, listener: (event: { type: string }) => void) => void listeners.delete(listener),
    fire: (type: string) => {
      for (const listener of [...listeners]) listener({ type })
    },
  }
}

function openTab(
  browser: ReturnType<typeof fakeBrowser>,
  server: ReturnType<typeof fakeServer>,
  channel = 'news',
  lifecycle: ReturnType<typeof fakeWindow> | null = null,
) {
  const tab = browser.tab()
  const client = new PushClient({
    url: URL,
    transports: [server.factory],
    share: tabShare({ locks: tab.locks, BroadcastChannel: tab.BroadcastChannel }),
    lifecycle,
    storage: { getItem: () => null, setItem: () => {} },
  })
  clients.push(client)
  const seen: unknown[] = []
  const gaps: unknown[] = []
  const subscription = client.subscribe(channel, (message) => seen.push(message.data))
  subscription.on('gap', (gap) => gaps.push(gap))
  client.connect()
  return { tab, client, seen, gaps, subscription }
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i)
const settle = (ms = 50): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

describe('tabShare', () => {
  it('elects one leader: one connection relayed to every tab, each message once and in order', async () => {
    const browser = fakeBrowser()
    const server = fakeServer()
    const tabs = [0, 1, 2, 3].map(() => openTab(browser, server))
    await vi.waitFor(() => expect(tabs.every(({ client }) => client.state === 'open')).toBe(true))
    await settle()
    for (const i of range(1, 20)) server.publish('news', i)
    await vi.waitFor(() => expect(tabs.map(({ seen }) => seen)).toEqual(tabs.map(() => range(1, 20))))
    expect(server.connections.size).toBe(1)
    expect(server.opened).toHaveLength(1)
    expect(tabs.flatMap(({ gaps }) => gaps)).toEqual([])
  })

  it('unsubscribes on the server only when no tab wants the channel', async () => {
    const browser = fakeBrowser()
    const server = fakeServer()
    const tabs = [0, 1, 2].map(() => openTab(browser, server))
    await vi.waitFor(() => expect(tabs.every(({ client }) => client.state === 'open')).toBe(true))
    await settle()
    const [connection] = server.connections
    const [first, second, third] = tabs as [(typeof tabs)[0], (typeof tabs)[0], (typeof tabs)[0]]
    first.subscription.unsubscribe()
    second.subscription.unsubscribe()
    await settle()
    expect(connection?.subscriptions.has('news')).toBe(true)
    server.publish('news', 'still')
    await vi.waitFor(() => expect(third.seen).toEqual(['still']))
    third.subscription.unsubscribe()
    await vi.waitFor(() => expect(connection?.subscriptions.has('news')).toBe(false))
    expect(connection?.received.filter(({ type }) => type === 'unsubscribe')).toHaveLength(1)
  })

  it('sends a follower’s publish through the leader and settles it by its own rid', async () => {
    const browser = fakeBrowser()
    const server = fakeServer()
    const tabs = [0, 1, 2].map(() => openTab(browser, server))
    await vi.waitFor(() => expect(tabs.every(({ client }) => client.state === 'open')).toBe(true))
    await settle()
    // Every tab's first publish has rid 1 in its own core: the relay keeps them apart.
    const acks = await Promise.all(tabs.map(({ client }, i) => client.publish('news', `from ${i}`)))
    expect(acks.map(({ offset }) => offset).sort()).toEqual([1, 2, 3])
    await vi.waitFor(() => expect(tabs.every(({ seen }) => seen.length === 3)).toBe(true))
    const [connection] = server.connections
    expect(server.connections.size).toBe(1)
    expect(new Set(connection?.received.flatMap((frame) => (frame.type === 'publish' ? [frame.rid] : []))).size).toBe(3)
  })

  it('hands over when the leader tab goes: no loss, no duplicates, one connection again', async () => {
    const browser = fakeBrowser()
    const server = fakeServer()
    const tabs = [0, 1, 2, 3].map(() => openTab(browser, server))
    await vi.waitFor(() => expect(tabs.every(({ client }) => client.state === 'open')).toBe(true))
    await settle()
    const leader = tabs[0] as (typeof tabs)[0]
    let sent = 0
    const publishing = setInterval(() => server.publish('news', ++sent), 2)
    await settle(40)
    leader.tab.crash()
    leader.client.close() // its transport ends with the tab
    await settle(150)
    clearInterval(publishing)
    const rest = tabs.slice(1)
    await vi.waitFor(() => expect(rest.map(({ seen }) => seen)).toEqual(rest.map(() => range(1, sent))))
    expect(rest.flatMap(({ gaps }) => gaps)).toEqual([])
    expect(server.connections.size).toBe(1)
    expect(server.opened).toHaveLength(2)
  })

  it('a leader entering the back-forward cache hands over, and follows when it comes back', async () => {
    const browser = fakeBrowser()
    const server = fakeServer()
    const window = fakeWindow()
    const leader = openTab(browser, server, 'news', window)
    await vi.waitFor(() => expect(leader.client.state).toBe('open'))
    const followers = [0, 1].map(() => openTab(browser, server))
    await vi.waitFor(() => expect(followers.every(({ client }) => client.state === 'open')).toBe(true))
    await settle()
    server.publish('news', 1)
    await vi.waitFor(() => expect([leader, ...followers].map(({ seen }) => seen)).toEqual([[1], [1], [1]]))
    // pagehide: the connection closes and the leader lock goes (a cached page holding a lock others
    // wait for would be evicted), so a follower leads; the hidden page gets nothing meanwhile.
    window.fire('pagehide')
    await vi.waitFor(() => expect(server.opened).toHaveLength(2))
    for (const n of [2, 3]) server.publish('news', n)
    await vi.waitFor(() => expect(followers.map(({ seen }) => seen)).toEqual([range(1, 3), range(1, 3)]))
    expect(leader.seen).toEqual([1])
    expect(server.connections.size).toBe(1)
    // pageshow: it comes back as a follower and resumes from its position.
    window.fire('pageshow')
    await vi.waitFor(() => expect(leader.seen).toEqual(range(1, 3)))
    server.publish('news', 4)
    await vi.waitFor(() => expect([leader, ...followers].map(({ seen }) => seen)).toEqual([range(1, 4), range(1, 4), range(1, 4)]))
    expect(server.connections.size).toBe(1)
    expect(server.opened).toHaveLength(2)
    expect([leader, ...followers].flatMap(({ gaps }) => gaps)).toEqual([])
  })

  it('a later leader serves tabs that join after the handover', async () => {
    const browser = fakeBrowser()
    const server = fakeServer()
    const first = openTab(browser, server)
    await vi.waitFor(() => expect(first.client.state).toBe('open'))
    server.publish('news', 1)
    first.tab.crash()
    first.client.close()
    const second = openTab(browser, server)
    const third = openTab(browser, server)
    await vi.waitFor(() => expect([second, third].every(({ client }) => client.state === 'open')).toBe(true))
    await settle()
    server.publish('news', 2)
    await vi.waitFor(() => expect([second.seen, third.seen]).toEqual([[2], [2]]))
    expect(server.connections.size).toBe(1)
  })

  it('falls back to an own connection without Web Locks or BroadcastChannel', () => {
    expect(tabShare({ locks: undefined, BroadcastChannel: undefined })(URL)).toBeUndefined()
  })
})
