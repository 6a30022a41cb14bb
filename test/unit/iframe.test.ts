import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { PushClient, iframe, type PushError, type PushMessage } from '../../src/index.js'
import type { ServerFrame } from '../../src/protocol/frames.js'
import { fakeFetch, hello, memoryStorage, useFakeTimers, message } from './fakes.js'

const SERVER = 'http://push.test'
const PAGE = 'http://app.test'

interface FakeIframe {
  src: string
  style: Record<string, string>
  readonly contentWindow: object
  onload: (() => void) | null
  attached: boolean
  removed: boolean
  remove(): void
  /** What the iframe's document does: `parent.postMessage(frameJson, origin)`. */
  post(frame: ServerFrame | Record<string, unknown>, from?: { origin?: string; source?: object }): void
  /** The document finished loading (the stream ended). */
  load(): void
}

/** A page with `document`, `location` and window listeners, as the iframe transport uses them. */
function fakePage(readyState: 'loading' | 'complete' = 'complete') {
  const listeners = new Map<string, Set<(event: unknown) => void>>()
  const dispatch = (type: string, event: unknown) => {
    for (const listener of [...(listeners.get(type) ?? [])]) listener(event)
  }
  const frames: FakeIframe[] = []
  const document = {
    readyState,
    body: {
      appendChild(element: FakeIframe) {
        element.attached = true
      },
    },
    createElement(tag: string) {
      expect(tag).toBe('iframe')
      const element: FakeIframe = {
        src: '',
        style: {},
        contentWindow: {},
        onload: null,
        attached: false,
        removed: false,
        remove() {
          element.removed = true
        },
        post(frame, from = {}) {
          dispatch('message', {
            data: JSON.stringify(frame),
            origin: from.origin ?? SERVER,
            source: from.source ?? element.contentWindow,
          })
        },
        load() {
          element.onload?.()
        },
      }
      frames.push(element)
      return element
    },
  }
  vi.stubGlobal('document', document)
  vi.stubGlobal('location', { origin: PAGE, href: `${PAGE}/app` })
  vi.stubGlobal('addEventListener', (type: string, listener: (event: unknown) => void) => {
    if (!listeners.has(type)) listeners.set(type, new Set())
    listeners.get(type)!.add(listener)
  })
  vi.stubGlobal('removeEventListener', (type: string, listener: (event: unknown) => void) => {
    listeners.get(type)?.delete(listener)
  })
  return {
    document,
    frames,
    get last(): FakeIframe {
      const frame = frames.at(-1)
      if (!frame) throw new Error('no iframe yet')
      return frame
    },
    listenerCount: () => [...listeners.values()].reduce((n, set) => n + set.size, 0),
    /** The page finished loading. */
    loaded() {
      document.readyState = 'complete'
      dispatch('load', {})
    },
  }
}

const offered = hello({ transports: ['iframe'] })

function setup(page = fakePage()) {
  const http = fakeFetch()
  const client = new PushClient({
    url: `${SERVER}/push`,
    transports: [iframe()],
    fetch: http.fetch,
    storage: memoryStorage(),
    random: () => 1,
  })
  const errors: PushError[] = []
  client.on('error', (error) => errors.push(error))
  return { client, page, http, codes: () => errors.map((error) => error.code) }
}

beforeEach(() => {
  useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
  vi.unstubAllGlobals()
})

describe('iframe transport', () => {
  it('loads <base>/iframe with the cursor and the page origin in a hidden iframe, open on hello', () => {
    const { client, page } = setup()
    client.subscribe('orders')
    client.connect()
    const frame = page.last
    expect(frame.attached).toBe(true)
    expect(frame.style.display).toBe('none')
    const src = new URL(frame.src)
    expect(src.origin + src.pathname).toBe(`${SERVER}/push/iframe`)
    expect(src.searchParams.get('cursor')).toBe('orders')
    expect(src.searchParams.get('origin')).toBe(PAGE)
    expect(client.state).toBe('connecting')
    frame.post(offered)
    expect(client.state).toBe('open')
    expect(client.transport).toBe('iframe')
  })

  it('starts the stream only once the page has loaded', () => {
    const { client, page } = setup(fakePage('loading'))
    client.connect()
    expect(page.frames.every((frame) => !frame.attached && !frame.src)).toBe(true)
    page.loaded()
    expect(page.last.attached).toBe(true)
    expect(page.last.src).toContain('/push/iframe?')
  })

  it('accepts messages only from its own iframe and from the server origin', () => {
    const { client, page } = setup()
    client.connect()
    const frame = page.last
    frame.post(offered, { origin: 'http://evil.test' })
    frame.post(offered, { source: {} })
    frame.post(offered, { origin: PAGE })
    expect(client.state).toBe('connecting')
    frame.post(offered)
    expect(client.state).toBe('open')
  })

  it('reopens with the current positions on the server recycle signal, removing the old iframe after the new hello', () => {
    const { client, page, codes } = setup()
    const seen: PushMessage[] = []
    client.subscribe('feed', (msg) => seen.push(msg))
    client.connect()
    const first = page.last
    first.post(offered)
    first.post({ type: 'subscribed', channel: 'feed', epoch: 'e', offset: 0 })
    first.post(message('feed', 'e', 1))
    first.post({ type: 'close', code: 'RECONNECT', message: 'stream recycled', retryMs: 0 })
    // The old document ends; that is no failure.
    first.load()
    vi.advanceTimersByTime(1000)
    expect(page.frames).toHaveLength(2)
    const second = page.last
    expect(new URL(second.src).searchParams.get('cursor')).toBe('feed=e-1')
    expect(first.removed).toBe(false)
    second.post(offered)
    expect(first.removed).toBe(true)
    second.post({ type: 'subscribed', channel: 'feed', epoch: 'e', offset: 1 })
    second.post(message('feed', 'e', 2))
    expect(seen.map((msg) => msg.offset)).toEqual([1, 2])
    expect(codes()).toEqual([])
    expect(client.state).toBe('open')
  })

  // Chromium fires no `load` for a document whose connection was cut: only the silence shows it.
  it('replaces a stream silent past the heartbeat (plus 2 s), without a failure, resuming from the current positions', () => {
    const { client, page, codes } = setup()
    const seen: PushMessage[] = []
    client.subscribe('feed', (msg) => seen.push(msg))
    client.connect()
    const first = page.last
    first.post(offered) // heartbeatMs: 1000
    first.post({ type: 'subscribed', channel: 'feed', epoch: 'e', offset: 0 })
    first.post(message('feed', 'e', 1))
    vi.advanceTimersByTime(2999)
    expect(page.frames).toHaveLength(1)
    vi.advanceTimersByTime(1)
    expect(page.frames).toHaveLength(2)
    const second = page.last
    expect(new URL(second.src).searchParams.get('cursor')).toBe('feed=e-1')
    second.post(offered)
    expect(first.removed).toBe(true)
    second.post({ type: 'subscribed', channel: 'feed', epoch: 'e', offset: 1 })
    second.post(message('feed', 'e', 1))
    second.post(message('feed', 'e', 2))
    expect(seen.map((msg) => msg.offset)).toEqual([1, 2])
    expect(codes()).toEqual([])
    expect(client.state).toBe('open')
  })

  it('keeps a stream whose pings arrive, and fails the transport when a replacement says no hello', () => {
    const { client, page, codes } = setup()
    client.connect()
    const first = page.last
    first.post(offered)
    for (let beat = 0; beat < 10; beat++) {
      vi.advanceTimersByTime(1000)
      first.post({ type: 'ping' })
    }
    expect(page.frames).toHaveLength(1)
    vi.advanceTimersByTime(3000)
    expect(page.frames).toHaveLength(2)
    // The replacement's handshake deadline (the client's handshakeTimeoutMs, 4 s by default).
    vi.advanceTimersByTime(4000)
    expect(codes()).toEqual(['HANDSHAKE_TIMEOUT'])
    expect(client.state).toBe('reconnecting')
    expect(page.frames.every((frame) => frame.removed)).toBe(true)
  })

  it('treats a document that ends without a close frame as a failed stream', () => {
    const { client, page, codes } = setup()
    client.connect()
    const frame = page.last
    frame.post(offered)
    frame.load()
    vi.advanceTimersByTime(50)
    expect(codes()).toEqual(['TRANSPORT_FAILED'])
    expect(frame.removed).toBe(true)
    expect(client.state).toBe('reconnecting')
  })

  it('fails the handshake fast when the server answers with an error document', () => {
    const { client, page, codes } = setup()
    client.connect()
    page.last.load()
    vi.advanceTimersByTime(50)
    expect(codes()).toEqual(['TRANSPORT_FAILED'])
  })

  it('publishes over POST, like the other HTTP transports', () => {
    const { client, page, http } = setup()
    client.connect()
    page.last.post(offered)
    void client.publish('chat', 'hi')
    expect(http.last.url).toBe(`${SERVER}/push/publish`)
    expect(http.last.init.method).toBe('POST')
  })

  it('removes the iframe and every listener on close', () => {
    const { client, page } = setup(fakePage('loading'))
    client.connect()
    page.loaded()
    page.last.post(offered)
    client.close()
    expect(page.last.removed).toBe(true)
    expect(page.listenerCount()).toBe(0)
    expect(vi.getTimerCount()).toBe(0)
  })
})
