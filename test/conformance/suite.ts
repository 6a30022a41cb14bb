/**
 * The conformance suite: written once, run for every transport, in Node
 * (test/conformance/*.test.ts) and in Chromium (e2e/). Each case drives a real
 * pushline server through a TCP proxy that cuts, freezes and refuses links.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { WebSocketServer } from 'ws'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { PushError } from '../../src/errors.js'
import { startPushFixture, waitFor, sleep, type PushFixture, type PushServerOptions } from '../helpers/push-fixture.js'
import type { ClientDriver, ClientOptions, RawProbe, ReceivedMessage } from './driver.js'

export interface ConformanceTarget {
  transport: string
  /** Makes a fresh driver (one client). */
  driver: () => ClientDriver
  /** Transport-level probes with hostile input; Node only. */
  raw?: RawProbe
  /**
   * Whether the server holds something for the client between its requests (a socket, a stream, a
   * held poll), so that `push.stats()` shows its subscriptions. Short polls hold nothing.
   * @default true
   */
  serverHoldsLink?: boolean
}

const MAX_FRAME_BYTES = 4096

/** Server settings for the suite: fast heartbeats so liveness cases run in well under a second. */
export const suiteServerOptions: PushServerOptions = {
  heartbeatMs: 300,
  // Longer than the client's grace, so that a frozen link is caught by the client's deadline.
  heartbeatGraceMs: 3000,
  maxFrameBytes: MAX_FRAME_BYTES,
  onPublish: ({ channel }) => {
    if (channel === 'locked') throw new PushError('PUBLISH_REJECTED', 'channel is read-only')
  },
}

const payloads = (received: ReceivedMessage[]) => received.map((m) => (m.data as { n: number }).n)
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

export function defineConformance(target: ConformanceTarget): void {
  const holdsLink = target.serverHoldsLink ?? true
  describe(`conformance: ${target.transport}`, () => {
    let fixture: PushFixture
    const drivers: ClientDriver[] = []

    const client = async (options: Partial<ClientOptions> = {}) => {
      const driver = target.driver()
      drivers.push(driver)
      await driver.create({ url: fixture.url, transport: target.transport, heartbeatGraceMs: 300, ...options })
      return driver
    }
    const connected = async (options: Partial<ClientOptions> = {}) => {
      const driver = await client(options)
      await driver.connect()
      await waitFor(async () => (await driver.state()) === 'open', 'state open')
      return driver
    }
    const publishNumbers = async (channel: string, from: number, to: number, pauseMs = 0) => {
      for (const n of range(from, to)) {
        await fixture.push.publish(channel, { n })
        if (pauseMs) await sleep(pauseMs)
      }
    }
    const received = async (driver: ClientDriver, channel: string, count: number, what = channel) => {
      await waitFor(async () => (await driver.messages(channel)).length >= count, `${count} messages on ${what}`)
      return driver.messages(channel)
    }

    beforeEach(async () => {
      fixture = await startPushFixture(suiteServerOptions)
    })
    afterEach(async () => {
      for (const driver of drivers.splice(0)) await driver.close()
      await fixture.close()
    })

    it('opens only when hello arrives through the transport', async () => {
      const driver = await client()
      expect(await driver.state()).toBe('idle')
      await driver.connect()
      await waitFor(async () => (await driver.state()) === 'open', 'state open')
      expect(await driver.transport()).toBe(target.transport)
      const log = await driver.log()
      expect(log.states.slice(0, 2)).toEqual(['connecting', 'open'])
      expect(log.transports).toEqual([target.transport])
    })

    it('does not count a silent endpoint as open', async () => {
      const silent = await startSilentServer()
      try {
        const driver = target.driver()
        drivers.push(driver)
        await driver.create({ url: silent.url, transport: target.transport, handshakeTimeoutMs: 300 })
        await driver.connect()
        await waitFor(async () => (await driver.log()).errors.includes('HANDSHAKE_TIMEOUT'), 'HANDSHAKE_TIMEOUT', 5000)
        expect((await driver.log()).states).not.toContain('open')
        expect(silent.accepted()).toBeGreaterThan(0)
        await driver.close()
      } finally {
        await silent.close()
      }
    })

    it('delivers published messages in order with positions', async () => {
      const driver = await connected()
      await driver.subscribe('orders')
      await fixture.push.publish('orders', { n: 1 }, { event: 'order-update' })
      await publishNumbers('orders', 2, 50)
      const messages = await received(driver, 'orders', 50)
      expect(payloads(messages)).toEqual(range(1, 50))
      expect(messages.map((m) => m.offset)).toEqual(range(1, 50))
      expect(messages[0]?.event).toBe('order-update')
      expect(messages[1]?.event).toBe('message')
      const epoch = messages[0]?.id.split('-')[0]
      expect(messages.every((m) => m.id === `${epoch}-${m.offset}` && m.channel === 'orders')).toBe(true)
    })

    it('publishes with an ack and delivers to subscribers', async () => {
      const sender = await connected()
      const listener = await connected()
      await listener.subscribe('chat')
      const ack = await sender.publish('chat', { text: 'hi' }, { event: 'say' })
      expect(ack).toMatchObject({ ok: true, channel: 'chat', offset: 1 })
      const [message] = await received(listener, 'chat', 1)
      expect(message).toMatchObject({ event: 'say', data: { text: 'hi' }, offset: 1 })
      expect(ack.ok && message?.id).toBe(ack.ok && ack.id)
    })

    it('rejects bad publishes with typed errors and keeps working', async () => {
      const driver = await connected()
      expect(await driver.publish('locked', { x: 1 })).toMatchObject({ ok: false, code: 'PUBLISH_REJECTED' })
      expect(await driver.publish('no spaces allowed', { x: 1 })).toMatchObject({ ok: false, code: 'INVALID_CHANNEL' })
      expect(await driver.publish('big', 'x'.repeat(MAX_FRAME_BYTES * 2))).toMatchObject({
        ok: false,
        code: 'FRAME_TOO_LARGE',
      })
      expect(await driver.publish('fine', { x: 1 })).toMatchObject({ ok: true, offset: 1 })
    })

    it('stops delivery after unsubscribe', async () => {
      const driver = await connected()
      await driver.subscribe('a')
      await driver.subscribe('b')
      await publishNumbers('a', 1, 1)
      await received(driver, 'a', 1)
      await driver.unsubscribe('a')
      // Confirmed on the server only after the unsubscribe took effect (stream transports carry the
      // new subscription set in the request that confirms it).
      await driver.subscribe('barrier')
      if (holdsLink) await waitFor(() => fixture.push.stats().subscriptions === 2, 'server-side unsubscribe')
      await publishNumbers('a', 2, 2)
      await publishNumbers('b', 1, 1)
      await received(driver, 'b', 1)
      await sleep(50)
      expect(payloads(await driver.messages('a'))).toEqual([1])
    })

    it('catches a silent (half-open) link by the heartbeat deadline and resumes', async () => {
      const driver = await connected()
      await driver.subscribe('feed')
      await publishNumbers('feed', 1, 2)
      await received(driver, 'feed', 2)
      fixture.proxy.freezeAll()
      await publishNumbers('feed', 3, 4)
      await waitFor(async () => (await driver.log()).errors.includes('HEARTBEAT_TIMEOUT'), 'HEARTBEAT_TIMEOUT', 5000)
      // Node's fetch may first reuse a pooled connection that the frozen proxy also holds; the
      // handshake deadline (5 s) moves past it, so allow for one.
      await waitFor(async () => (await driver.log()).states.filter((s) => s === 'open').length >= 2, 'reopen', 12_000)
      const messages = await received(driver, 'feed', 4)
      expect(payloads(messages)).toEqual([1, 2, 3, 4])
      expect((await driver.log()).states).toContain('reconnecting')
    })

    it('delivers every message exactly once, in order, while links are cut repeatedly', async () => {
      const driver = await connected()
      await driver.subscribe('stream')
      const rounds = 8
      const perRound = 30
      let n = 0
      let cut = 0
      for (let round = 0; round < rounds; round++) {
        // Each cut hits a link, and messages keep coming while the client is away. Whether the client
        // sees the cut depends on the transport (a cut between two polls hits no request; Chromium
        // resends a cut poll by itself; a cut iframe document fires no event until the liveness
        // deadline), so what is asserted is what the app sees: everything, once, in order.
        await waitFor(async () => (await driver.state()) === 'open' && fixture.proxy.links > 0, `a link before cut ${round}`)
        for (let i = 0; i < perRound; i++) {
          await fixture.push.publish('stream', { n: ++n })
          if (i === 10) cut += fixture.proxy.cutAll()
          await sleep(3)
        }
      }
      const total = rounds * perRound
      await received(driver, 'stream', total)
      await sleep(100)
      expect(payloads(await driver.messages('stream'))).toEqual(range(1, total))
      expect(await driver.gaps('stream')).toEqual([])
      expect(cut).toBeGreaterThanOrEqual(rounds)
    })

    it('reports history exhaustion as a gap, then continues', async () => {
      await fixture.restart({ ...suiteServerOptions, historySize: 5 })
      const driver = await connected()
      await driver.subscribe('news')
      await publishNumbers('news', 1, 1)
      await received(driver, 'news', 1)
      fixture.proxy.refuse(true)
      fixture.proxy.cutAll()
      await waitFor(async () => (await driver.state()) === 'reconnecting', 'reconnecting')
      await publishNumbers('news', 2, 21)
      fixture.proxy.refuse(false)
      await waitFor(async () => (await driver.gaps('news')).length === 1, 'gap', 10_000)
      const [gap] = await driver.gaps('news')
      const epoch = (await driver.messages('news'))[0]?.id.split('-')[0]
      expect(gap).toMatchObject({ channel: 'news', reason: 'history-exhausted', from: `${epoch}-1`, to: `${epoch}-16` })
      await publishNumbers('news', 22, 22)
      const messages = await received(driver, 'news', 7)
      expect(payloads(messages)).toEqual([1, 17, 18, 19, 20, 21, 22])
    })

    it('reports an epoch change after a server restart, then goes on live', async () => {
      const driver = await connected()
      await driver.subscribe('config')
      await publishNumbers('config', 1, 3)
      const before = await received(driver, 'config', 3)
      await fixture.restart()
      await waitFor(async () => (await driver.gaps('config')).length === 1, 'epoch gap', 10_000)
      const [gap] = await driver.gaps('config')
      expect(gap).toMatchObject({ reason: 'epoch-changed', from: before[2]?.id })
      expect(gap?.to.split('-')[0]).not.toBe(before[0]?.id.split('-')[0])
      await publishNumbers('config', 100, 100)
      const messages = await received(driver, 'config', 4)
      expect(messages[3]).toMatchObject({ offset: 1, data: { n: 100 } })
    })

    it('keeps subscriptions made before connect and during an outage', async () => {
      const driver = await client()
      await driver.subscribe('early')
      await driver.connect()
      // Short polls: the answer that brings `hello` brings the subscription's `subscribed` too.
      if (holdsLink) await waitFor(() => fixture.push.stats().subscriptions === 1, 'early subscription on the server')
      else await waitFor(async () => (await driver.state()) === 'open', 'open')
      fixture.proxy.refuse(true)
      fixture.proxy.cutAll()
      await waitFor(async () => (await driver.state()) === 'reconnecting', 'reconnecting')
      await driver.subscribe('late')
      fixture.proxy.refuse(false)
      if (holdsLink) await waitFor(() => fixture.push.stats().subscriptions === 2, 'both subscriptions on the server')
      else await waitFor(async () => (await driver.log()).states.filter((s) => s === 'open').length === 2, 'reopen')
      await publishNumbers('early', 1, 1)
      await publishNumbers('late', 1, 1)
      await received(driver, 'early', 1)
      await received(driver, 'late', 1)
    })

    it('waits with a publish made during an outage and sends it once', async () => {
      const driver = await connected()
      await driver.subscribe('outbox')
      fixture.proxy.refuse(true)
      fixture.proxy.cutAll()
      await waitFor(async () => (await driver.state()) === 'reconnecting', 'reconnecting')
      const pending = driver.publish('outbox', { n: 1 })
      await sleep(200)
      fixture.proxy.refuse(false)
      expect(await pending).toMatchObject({ ok: true, offset: 1 })
      const messages = await received(driver, 'outbox', 1)
      await sleep(100)
      expect(payloads(await driver.messages('outbox'))).toEqual([1])
      expect(messages).toHaveLength(1)
    })

    it('rewinds: a fresh subscribe with rewind 3 after 5 published gets 3, 4, 5, then live 6', async () => {
      const driver = await connected()
      await publishNumbers('last', 1, 5)
      expect(await driver.subscribe('last', { rewind: 3 })).toEqual({ ok: true })
      const rewound = await received(driver, 'last', 3)
      expect(payloads(rewound)).toEqual([3, 4, 5])
      expect(rewound.map((m) => m.offset)).toEqual([3, 4, 5])
      await publishNumbers('last', 6, 6)
      await received(driver, 'last', 4)
      await sleep(100)
      expect(payloads(await driver.messages('last'))).toEqual([3, 4, 5, 6])
      expect(await driver.gaps('last')).toEqual([])
    })

    it('rewinds through what history holds when it holds fewer, without a gap', async () => {
      await fixture.restart({ ...suiteServerOptions, historySize: 3 })
      const driver = await connected()
      await publishNumbers('trimmed', 1, 5)
      await publishNumbers('short', 1, 2)
      await driver.subscribe('trimmed', { rewind: 50 })
      await driver.subscribe('short', { rewind: 50 })
      await driver.subscribe('empty', { rewind: 50 })
      await received(driver, 'trimmed', 3)
      await received(driver, 'short', 2)
      await publishNumbers('empty', 1, 1)
      await received(driver, 'empty', 1)
      await sleep(100)
      expect(payloads(await driver.messages('trimmed'))).toEqual([3, 4, 5])
      expect(payloads(await driver.messages('short'))).toEqual([1, 2])
      expect(payloads(await driver.messages('empty'))).toEqual([1])
      for (const channel of ['trimmed', 'short', 'empty']) expect(await driver.gaps(channel)).toEqual([])
    })

    it('does not rewind again on reconnect: it resumes from the position it has', async () => {
      const driver = await connected()
      await publishNumbers('rewound', 1, 5)
      await driver.subscribe('rewound', { rewind: 3 })
      // Subscribed on an empty channel: its position (offset 0) came with `subscribed`, not a message.
      await driver.subscribe('fresh', { rewind: 2 })
      await received(driver, 'rewound', 3)
      fixture.proxy.refuse(true)
      fixture.proxy.cutAll()
      await waitFor(async () => (await driver.state()) === 'reconnecting', 'reconnecting')
      await publishNumbers('rewound', 6, 7)
      // A second rewind would deliver only 3 and 4 of these: the resume from offset 0 delivers all.
      await publishNumbers('fresh', 1, 4)
      fixture.proxy.refuse(false)
      await received(driver, 'rewound', 5)
      await received(driver, 'fresh', 4)
      await sleep(100)
      expect(payloads(await driver.messages('rewound'))).toEqual([3, 4, 5, 6, 7])
      expect(payloads(await driver.messages('fresh'))).toEqual([1, 2, 3, 4])
      expect(await driver.gaps('rewound')).toEqual([])
      expect(await driver.gaps('fresh')).toEqual([])
    })

    it('refuses rewind together with since, and a rewind that is not a count, with INVALID_OPTIONS', async () => {
      const driver = await connected()
      const withSince = await driver.subscribe('both', { rewind: 2, since: 'abc-1' })
      expect(withSince).toMatchObject({ ok: false, code: 'INVALID_OPTIONS' })
      expect(withSince.ok || withSince.message).toContain('since')
      expect(await driver.subscribe('both', { rewind: -1 })).toMatchObject({ ok: false, code: 'INVALID_OPTIONS' })
      // The client goes on: the channel can still be subscribed properly.
      await publishNumbers('both', 1, 2)
      await driver.subscribe('both', { rewind: 1 })
      expect(payloads(await received(driver, 'both', 1))).toEqual([2])
    })

    if (target.raw) {
      const raw = target.raw
      it('answers malformed and oversized frames with typed errors; other clients are unaffected', async () => {
        const bystander = await connected()
        await bystander.subscribe('ticks')
        await publishNumbers('ticks', 1, 1)
        await received(bystander, 'ticks', 1)
        expect(await raw.malformed(fixture.directUrl)).toBe('BAD_FRAME')
        expect(await raw.oversized(fixture.directUrl, MAX_FRAME_BYTES)).toBe('FRAME_TOO_LARGE')
        await publishNumbers('ticks', 2, 3)
        const messages = await received(bystander, 'ticks', 3)
        expect(payloads(messages)).toEqual([1, 2, 3])
        expect((await bystander.log()).states.filter((s) => s === 'open')).toHaveLength(1)
      })
    }
  })
}

/**
 * An endpoint that accepts every transport's connection and then says
 * nothing: what a buffering proxy looks like from the client.
 */
async function startSilentServer() {
  let accepted = 0
  const wss = new WebSocketServer({ noServer: true })
  const server = http.createServer((req, res) => {
    accepted++
    res.writeHead(200, { 'Content-Type': req.url?.includes('/sse') ? 'text/event-stream' : 'text/plain' })
    res.flushHeaders()
  })
  server.on('upgrade', (req, socket, head) => {
    accepted++
    wss.handleUpgrade(req, socket, head, () => {})
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/push`,
    accepted: () => accepted,
    async close() {
      for (const ws of wss.clients) ws.terminate()
      wss.close()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
