/**
 * Browser lifecycle: `online`/`offline`, `visibilitychange`, `pagehide`/`pageshow` (back-forward
 * cache), driven through a fake window passed as the `lifecycle` option, with fake timers.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { PushClient as CorePushClient } from '../../src/core.js'
import { PushClient, websocket, type LifecycleTarget, type PushClientOptions, type PushMessage } from '../../src/index.js'
import { fakeTransport, fakeWebSockets, hello, memoryStorage, useFakeTimers } from './fakes.js'

const URL_BASE = 'http://push.test/push'
const EVENTS = ['online', 'offline', 'visibilitychange', 'pagehide', 'pageshow']

/** A window that records its listeners, with `navigator.onLine` and events the test fires. */
function fakeWindow() {
  const listeners = new Map<string, Set<(event: unknown) => void>>()
  let added = 0
  const target = {
    navigator: { onLine: true },
    addEventListener(type: string, listener: (event: unknown) => void) {
      added++
      // Like the DOM: the same listener twice for one type is one listener.
      listeners.set(type, (listeners.get(type) ?? new Set()).add(listener))
    },
    removeEventListener(type: string, listener: (event: unknown) => void) {
      listeners.get(type)?.delete(listener)
    },
    /** Listeners in place, over every type. */
    get listening() {
      return [...listeners.values()].reduce((sum, set) => sum + set.size, 0)
    },
    /** How many times addEventListener was called. */
    get added() {
      return added
    },
    types() {
      return [...listeners].filter(([, set]) => set.size).map(([type]) => type)
    },
    fire(type: string, init: Record<string, unknown> = {}) {
      for (const listener of [...(listeners.get(type) ?? [])]) listener({ type, ...init })
    },
    goOffline() {
      target.navigator.onLine = false
      target.fire('offline')
    },
    goOnline() {
      target.navigator.onLine = true
      target.fire('online')
    },
  }
  const typed: LifecycleTarget = target
  return Object.assign(target, { typed })
}

function setup(options: Partial<PushClientOptions> = {}) {
  const ws = fakeWebSockets()
  const win = fakeWindow()
  const client = new PushClient({
    url: URL_BASE,
    storage: memoryStorage(),
    transports: [websocket()],
    WebSocket: ws.WebSocket,
    random: () => 1,
    heartbeatGraceMs: 2000,
    lifecycle: win.typed,
    ...options,
  })
  const log = { states: [] as string[], errors: [] as string[] }
  client.on('state', (state) => log.states.push(state))
  client.on('error', (error) => log.errors.push(error.code))
  /** Connects if needed and completes the handshake on the newest socket (heartbeat 1 s). */
  const open = () => {
    if (client.state === 'idle' || client.state === 'closed') client.connect()
    ws.last.accept()
    ws.last.receive(hello({ heartbeatMs: 1000 }))
    expect(client.state).toBe('open')
    return ws.last
  }
  /** Runs the clock until the client made its next socket; how long that took. */
  const waitForSocket = (limit = 120_000) => {
    const count = ws.sockets.length
    let waited = 0
    while (waited < limit && ws.sockets.length === count) {
      vi.advanceTimersByTime(1)
      waited++
    }
    return waited
  }
  return { client, ws, win, log, open, waitForSocket }
}

beforeEach(() => {
  useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
  vi.unstubAllGlobals()
})

describe('listeners', () => {
  it('are added by connect(), one per event, never per reconnect, and all removed by close()', () => {
    const { client, ws, win, open, waitForSocket } = setup()
    expect(win.listening).toBe(0)
    client.connect()
    expect(win.types().sort()).toEqual([...EVENTS].sort())
    expect(win.listening).toBe(5)
    for (let i = 0; i < 5; i++) {
      open().drop()
      waitForSocket()
    }
    expect(ws.sockets).toHaveLength(6)
    expect(win.added).toBe(5)
    expect(win.listening).toBe(5)
    client.close()
    expect(win.listening).toBe(0)
    // Events after close() reach nothing.
    win.goOnline()
    win.fire('pageshow', { persisted: true })
    expect(ws.sockets).toHaveLength(6)
    // connect() again adds them again, once.
    client.connect()
    expect(win.listening).toBe(5)
    expect(win.added).toBe(10)
    client.connect()
    expect(win.added).toBe(10)
    client.close()
    expect(win.listening).toBe(0)
  })

  it('default to globalThis where it has addEventListener, found at run time', () => {
    const add = vi.fn()
    const remove = vi.fn()
    vi.stubGlobal('addEventListener', add)
    vi.stubGlobal('removeEventListener', remove)
    const ws = fakeWebSockets()
    const client = new PushClient({ url: URL_BASE, storage: memoryStorage(), transports: [websocket()], WebSocket: ws.WebSocket })
    client.connect()
    expect(add.mock.calls.map(([type]) => type as string).sort()).toEqual([...EVENTS].sort())
    client.close()
    expect(remove.mock.calls.map(([type, listener]) => [type, listener])).toEqual(add.mock.calls.map(([type, listener]) => [type, listener]))
  })

  it('are off with lifecycle: null', () => {
    const add = vi.fn()
    vi.stubGlobal('addEventListener', add)
    vi.stubGlobal('removeEventListener', vi.fn())
    const { client } = setup({ lifecycle: null })
    client.connect()
    client.close()
    expect(add).not.toHaveBeenCalled()
  })
})

describe('offline and online', () => {
  it('offline cancels the pending retry; online reconnects at once, with the backoff reset', () => {
    const { client, ws, win, open, log, waitForSocket } = setup()
    open()
    // A few failed attempts: the delay has grown (500, 1000, 2000, … with random() = 1).
    for (let i = 0; i < 3; i++) {
      ws.last.drop()
      waitForSocket()
    }
    ws.last.drop()
    expect(client.state).toBe('reconnecting')
    win.goOffline()
    expect(waitForSocket(120_000)).toBe(120_000)
    expect(ws.sockets).toHaveLength(4)
    expect(client.state).toBe('reconnecting')
    win.goOnline()
    expect(ws.sockets).toHaveLength(5) // no timer ran
    // The counter starts over: the next failure waits the first delay again.
    ws.last.drop()
    expect(waitForSocket()).toBe(500)
    open()
    expect(log.states).toEqual(['connecting', 'open', 'reconnecting', 'open'])
  })

  it('does not retry a link that dropped while navigator.onLine is false', () => {
    const { client, ws, win, open, log, waitForSocket } = setup()
    open()
    win.navigator.onLine = false // no event seen yet: the property decides
    ws.last.drop()
    expect(client.state).toBe('reconnecting')
    expect(waitForSocket(120_000)).toBe(120_000)
    expect(ws.sockets).toHaveLength(1)
    expect(log.errors).toEqual(['TRANSPORT_FAILED'])
    win.goOnline()
    expect(ws.sockets).toHaveLength(2)
    open()
  })

  it('does not fall back to another transport while offline: none is to blame', () => {
    const win = fakeWindow()
    const first = fakeTransport('websocket')
    const second = fakeTransport('sse')
    const client = new CorePushClient({
      url: URL_BASE,
      storage: memoryStorage(),
      random: () => 1,
      transports: [first.factory, second.factory],
      lifecycle: win.typed,
    })
    const fallbacks: unknown[] = []
    client.on('fallback', (event) => fallbacks.push(event))
    win.navigator.onLine = false
    client.connect()
    first.last.fail()
    expect(fallbacks).toEqual([])
    expect(second.instances).toHaveLength(0)
    vi.advanceTimersByTime(120_000)
    expect(first.instances).toHaveLength(1)
    win.goOnline()
    // A new round, from the first transport.
    expect(first.instances).toHaveLength(2)
    first.last.hello(['websocket', 'sse'])
    expect(client.state).toBe('open')
  })

  it('offline leaves an open link open, under its liveness deadline', () => {
    const { client, ws, win, open, log, waitForSocket } = setup()
    const socket = open()
    win.goOffline()
    expect(client.state).toBe('open')
    expect(socket.closedWith).toBeUndefined()
    // Silent for heartbeatMs + grace (1000 + 2000): dead, and no retry while offline.
    vi.advanceTimersByTime(2999)
    expect(client.state).toBe('open')
    vi.advanceTimersByTime(1)
    expect(log.errors).toEqual(['HEARTBEAT_TIMEOUT'])
    expect(socket.closedWith).toBe(1000)
    expect(waitForSocket(60_000)).toBe(60_000)
    expect(ws.sockets).toHaveLength(1)
    win.goOnline()
    expect(ws.sockets).toHaveLength(2)
  })

  it('online while open or while an attempt is under way changes nothing', () => {
    const { client, ws, win, open } = setup()
    client.connect()
    win.goOnline()
    expect(ws.sockets).toHaveLength(1)
    open()
    win.goOnline()
    win.fire('pageshow', { persisted: false }) // a first load's pageshow
    expect(ws.sockets).toHaveLength(1)
    expect(client.state).toBe('open')
  })
})

describe('visibility', () => {
  /** Timers that run only when the test says: a background tab's, throttled to nothing. */
  function throttledTimers() {
    let now = 1_000_000
    let pending: { at: number; run: () => void }[] = []
    return {
      timers: {
        setTimeout: (run: () => void, ms: number) => {
          const entry = { at: now + ms, run }
          pending.push(entry)
          return entry
        },
        clearTimeout: (entry: unknown) => {
          pending = pending.filter((each) => each !== entry)
        },
        now: () => now,
      },
      /** Moves the clock without running any timer. */
      pass(ms: number) {
        now += ms
      },
      /** Runs the timers that are due, late. */
      fireDue() {
        const due = pending.filter((entry) => entry.at <= now)
        pending = pending.filter((entry) => entry.at > now)
        for (const entry of due) entry.run()
      },
      /** When the pending timers are due, relative to now. */
      get dueIn() {
        return pending.map((entry) => entry.at - now)
      },
    }
  }

  it('timers throttled in a background tab never kill a link that has traffic', () => {
    const clock = throttledTimers()
    const { client, win, open, log } = setup({ timers: clock.timers })
    const socket = open()
    // Hidden for a minute: pings every second, and no timer runs.
    for (let i = 0; i < 60; i++) {
      clock.pass(1000)
      socket.receive({ type: 'ping' })
    }
    // The liveness timer finally fires, 57 s late: the clock says the link is alive.
    clock.fireDue()
    expect(client.state).toBe('open')
    expect(clock.dueIn).toEqual([3000])
    clock.pass(500)
    win.fire('visibilitychange')
    expect(client.state).toBe('open')
    // Still one liveness timer, now due 3 s after the last frame.
    expect(clock.dueIn).toEqual([2500])
    expect(log.errors).toEqual([])
  })

  it('becoming visible past the deadline drops the link and reconnects at once', () => {
    const clock = throttledTimers()
    const { client, ws, win, open, log } = setup({ timers: clock.timers })
    const socket = open()
    socket.receive({ type: 'ping' })
    // Hidden and silent for 10 s; the timers slept through it.
    clock.pass(10_000)
    win.fire('visibilitychange')
    expect(log.errors).toEqual(['HEARTBEAT_TIMEOUT'])
    expect(socket.closedWith).toBe(1000)
    expect(ws.sockets).toHaveLength(2) // no backoff delay
    expect(client.state).toBe('reconnecting')
    open()
    expect(log.states).toEqual(['connecting', 'open', 'reconnecting', 'open'])
  })

  it('does not reconnect early when not open (waiting out a delay, or connecting)', () => {
    const { client, ws, win, waitForSocket } = setup()
    client.connect()
    win.fire('visibilitychange')
    expect(ws.sockets).toHaveLength(1)
    ws.last.drop()
    win.fire('visibilitychange')
    expect(ws.sockets).toHaveLength(1)
    expect(waitForSocket()).toBe(500)
  })

  it('becoming visible while offline past the deadline drops, and waits for online', () => {
    const { ws, win, open } = setup()
    open()
    win.goOffline()
    vi.setSystemTime(Date.now() + 10_000) // the clock moved, the timers did not
    win.fire('visibilitychange')
    expect(ws.last.closedWith).toBe(1000)
    vi.advanceTimersByTime(60_000)
    expect(ws.sockets).toHaveLength(1)
    win.goOnline()
    expect(ws.sockets).toHaveLength(2)
  })
})

describe('back-forward cache', () => {
  it('pagehide closes cleanly keeping subscriptions and positions; pageshow resumes from them at once', async () => {
    const { client, ws, win, open, log } = setup()
    const received: PushMessage[] = []
    client.subscribe('news', (message) => received.push(message))
    const socket = open()
    const subscribe = socket.framesOf('subscribe')[0]!
    socket.receive({ type: 'subscribed', channel: 'news', rid: subscribe.rid, epoch: 'e', offset: 0 })
    for (const offset of [1, 2, 3]) {
      socket.receive({ type: 'message', channel: 'news', event: 'message', data: offset, offset, id: `e-${offset}` })
    }
    const published = client.publish('news', 'while away')
    win.fire('pagehide', { persisted: true })
    expect(socket.closedWith).toBe(1000)
    expect([socket.onmessage, socket.onclose, socket.onopen]).toEqual([null, null, null])
    expect(client.state).toBe('reconnecting')
    // In the cache: nothing runs (no retry is scheduled), nothing is reported.
    vi.advanceTimersByTime(5000)
    expect(ws.sockets).toHaveLength(1)
    expect(log.errors).toEqual([])

    win.fire('pageshow', { persisted: true })
    expect(ws.sockets).toHaveLength(2)
    const resumed = open()
    const again = resumed.framesOf('subscribe')
    expect(again).toEqual([{ type: 'subscribe', channel: 'news', rid: expect.any(String), since: 'e-3' }])
    resumed.receive({ type: 'subscribed', channel: 'news', rid: again[0]!.rid, epoch: 'e', offset: 3 })
    // The publish made before pagehide is sent on the new connection.
    const [publish] = resumed.framesOf('publish')
    expect(publish).toMatchObject({ channel: 'news', data: 'while away' })
    resumed.receive({ type: 'ack', rid: publish!.rid, channel: 'news', offset: 4, id: 'e-4' })
    await expect(published).resolves.toEqual({ channel: 'news', offset: 4, id: 'e-4' })
    resumed.receive({ type: 'message', channel: 'news', event: 'message', data: 4, offset: 4, id: 'e-4' })
    expect(received.map((message) => message.offset)).toEqual([1, 2, 3, 4])
    expect(log.states).toEqual(['connecting', 'open', 'reconnecting', 'open'])
  })

  it('pagehide while waiting to reconnect cancels the retry', () => {
    const { ws, win, open } = setup()
    open().drop()
    win.fire('pagehide', { persisted: true })
    vi.advanceTimersByTime(60_000)
    expect(ws.sockets).toHaveLength(1)
    win.fire('pageshow', { persisted: true })
    expect(ws.sockets).toHaveLength(2)
  })

  it('pageshow while offline waits for online', () => {
    const { ws, win, open } = setup()
    open()
    win.fire('pagehide', { persisted: true })
    win.navigator.onLine = false
    win.fire('pageshow', { persisted: true })
    expect(ws.sockets).toHaveLength(1)
    win.goOnline()
    expect(ws.sockets).toHaveLength(2)
  })
})
