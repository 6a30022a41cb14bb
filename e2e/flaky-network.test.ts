/**
 * Every transport in real Chromium behind the demo's `flaky` network (demo-server/hostile-network.js:
 * 80–400 ms of latency per chunk, every connection killed after a random lifetime, 2 s on average
 * here), while the server publishes without pause: the client must notice each cut by itself,
 * reopen, resume, and deliver every message exactly once, in order, with no gap.
 *
 * The page's heartbeat grace is 60 s, so the client's liveness deadline (heartbeat + grace) cannot
 * rescue a stalled link within the test: a transport passes only if it notices cuts on its own.
 * For the iframe stream that is the point: Chromium tells the page nothing when the iframe's
 * document is cut (no `load`, no error), so only the stream's silence past the server's heartbeat
 * (1 s here) shows it; before the transport watched for that, each cut stalled the stream until
 * the liveness deadline (20 s with the demo's 10 s heartbeat and the default 10 s grace).
 * The proxy must keep each connection's bytes in order, as TCP does: when it let delayed chunks
 * overtake each other, SSE and WebSocket reported gaps and lost messages here.
 */
import type { Page } from 'playwright-core'
import { describe, expect } from 'vitest'
// @ts-expect-error: the demo's proxies are plain JavaScript, without types
import { startHostileNetwork } from '../demo-server/hostile-network.js'
import { startPublisher, test } from './harness.js'

/** What e2e/page/app.js keeps in `window.e2e`. */
interface PageState {
  states: string[]
  errors: string[]
  messages: { data: { n: number }; offset: number }[]
  gaps: unknown[]
  subscribed: string[]
}
interface HostileNetwork {
  profiles: { id: string; port: number }[]
  close(): Promise<void>
}

const pageState = (page: Page) => page.evaluate<PageState>('window.e2e')
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

/** How long the server publishes through the cuts: several lifetimes of a connection. */
const PUBLISH_MS = 10_000


describe('the flaky network (demo-server/hostile-network.js)', () => {
  for (const transport of ['iframe', 'websocket', 'sse', 'long-polling', 'short-polling'] as const) {
    test(`over ${transport}: cuts are noticed without the liveness deadline; every message once, in order`, async ({
      page,
      server,
      annotate,
    }) => {
      const network = (await startHostileNetwork(
        { host: '127.0.0.1', port: Number(new URL(server.origin).port) },
        { meanLifetimeMs: 2000 },
      )) as HostileNetwork
      const flaky = network.profiles.find((profile) => profile.id === 'flaky')
      if (!flaky) throw new Error('hostile-network.js has no flaky proxy')
      const origin = `http://127.0.0.1:${flaky.port}`
      // Each stream, poll or WebSocket the page opens (publishes are POSTs).
      let opened = 0
      page.on('request', (request) => {
        if (request.method() === 'GET' && new URL(request.url()).pathname.startsWith('/push/')) opened++
      })
      page.on('websocket', () => opened++)
      let publisher: ReturnType<typeof startPublisher> | undefined
      try {
        // The page comes through the flaky network too (a page Playwright fulfilled would count as
        // public, and Chromium's local network access checks would block its WebSocket to loopback):
        // a load the network cut is retried.
        for (let load = 1; ; load++) {
          await page.goto(`${origin}/?transport=${transport}&graceMs=60000&maxDelayMs=1000&pollMs=250`).catch(() => undefined)
          const started = await expect
            .poll(() => page.evaluate(() => 'e2eClient' in window).catch(() => false), { timeout: 5000 })
            .toBe(true)
            .then(() => true, () => false)
          if (started) break
          if (load === 5) throw new Error('the page did not load through the flaky network in 5 tries')
        }
        // Both channels confirmed before the first publish: every message is owed to the page.
        await expect.poll(async () => (await pageState(page)).subscribed.length, { timeout: 30_000 }).toBeGreaterThanOrEqual(2)

        const openedBefore = opened
        publisher = startPublisher(server, 'e2e', 100)
        // Besides the network's own random cuts, two certain ones: every connection at once.
        for (let cut = 0; cut < 2; cut++) {
          await sleep(PUBLISH_MS / 3)
          server.dropConnections()
        }
        await sleep(PUBLISH_MS / 3)
        const total = await publisher.stop()
        // A reopen or two after the last publish, each within a heartbeat and a margin of the cut.
        await expect
          .poll(async () => (await pageState(page)).messages.length, { timeout: 20_000, message: `all ${total} messages over ${transport}` })
          .toBeGreaterThanOrEqual(total)
        await sleep(300)
        const { messages, gaps, errors } = await pageState(page)
        await annotate(`${total} messages; ${opened - openedBefore} streams or polls opened while publishing; errors: ${errors.join(' | ')}`)
        expect(messages.map((message) => message.data.n)).toEqual(range(1, total))
        expect(messages.map((message) => message.offset)).toEqual(range(1, total))
        expect(gaps).toEqual([])
        // Every cut was noticed by the transport itself, never by the (60 s) liveness deadline.
        expect(errors.filter((error) => error.startsWith('HEARTBEAT_TIMEOUT'))).toEqual([])
      } finally {
        await publisher?.stop()
        await network.close()
      }
    }, 90_000)
  }
})
