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
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import { describe, expect } from 'vitest'
// @ts-expect-error: the demo's proxies are plain JavaScript, without types
import { startHostileNetwork } from '../demo-server/hostile-network.js'
import { root, test, type E2EServer } from './harness.js'

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

/** The page's files, served by Playwright: only pushline's own requests cross the flaky network. */
const PAGE_FILES: Record<string, [file: string, contentType: string]> = {
  '/?*': ['e2e/page/index.html', 'text/html; charset=utf-8'],
  '/app.js': ['e2e/page/app.js', 'text/javascript; charset=utf-8'],
  '/pushline.iife.min.js': ['dist/pushline.iife.min.js', 'text/javascript; charset=utf-8'],
}
/** How long the server publishes through the cuts: several lifetimes of a connection. */
const PUBLISH_MS = 10_000

/** Publishes `{ n: 1, 2, … }` on `e2e` every 100 ms until stopped; resolves with the count. */
function startPublisher(server: E2EServer) {
  let count = 0
  let stopped = false
  const done = (async () => {
    while (!stopped) {
      await server.push.publish('e2e', { n: ++count })
      await sleep(100)
    }
  })()
  return {
    get count() {
      return count
    },
    async stop() {
      stopped = true
      await done
      return count
    },
  }
}

describe('the flaky network (demo-server/hostile-network.js)', () => {
  for (const transport of (process.env.FLAKY_TRANSPORTS?.split(',') ?? ['iframe', 'websocket', 'sse', 'long-polling', 'short-polling'])) {
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
      for (const [path, [file, contentType]] of Object.entries(PAGE_FILES)) {
        await page.route(`${origin}${path}`, async (route) =>
          route.fulfill({ status: 200, contentType, body: await readFile(join(root, file)) }),
        )
      }
      // Each stream or poll the page opens (pushline's GETs; publishes are POSTs).
      let opened = 0
      page.on('request', (request) => {
        if (request.method() === 'GET' && new URL(request.url()).pathname.startsWith('/push/')) opened++
      })
      let publisher: ReturnType<typeof startPublisher> | undefined
      try {
        await page.goto(`${origin}/?transport=${transport}&graceMs=60000&maxDelayMs=1000&pollMs=250`)
        // Both channels confirmed before the first publish: every message is owed to the page.
        await expect.poll(async () => (await pageState(page)).subscribed.length, { timeout: 30_000 }).toBeGreaterThanOrEqual(2)
        const openedBefore = opened
        publisher = startPublisher(server)
        await sleep(PUBLISH_MS)
        const total = await publisher.stop()
        // A reopen or two after the last publish, each within a heartbeat and a margin of the cut.
        await expect
          .poll(async () => (await pageState(page)).messages.length, { timeout: 20_000, message: `all ${total} messages over ${transport}` })
          .toBeGreaterThanOrEqual(total)
          .catch(async (e) => { const st = await pageState(page); const got = new Set(st.messages.map((m) => m.data.n)); console.log(transport, 'missing', range(1, total).filter((n) => !got.has(n)), 'states', st.states, 'errors', st.errors, 'gaps', st.gaps, 'opened', opened, 'subscribed', st.subscribed); throw e })
        await sleep(300)
        const { messages, gaps, errors } = await pageState(page)
        await annotate(`${total} messages; ${opened - openedBefore} streams or polls opened while publishing; errors: ${errors.join(' | ')}`)
        expect(messages.map((message) => message.data.n)).toEqual(range(1, total))
        expect(messages.map((message) => message.offset)).toEqual(range(1, total))
        expect(gaps).toEqual([])
        // The network did cut the link meanwhile: the page had to open more than one.
        expect(opened - openedBefore).toBeGreaterThan(1)
        expect(errors.filter((error) => error.startsWith('HEARTBEAT_TIMEOUT'))).toEqual([])
      } finally {
        await publisher?.stop()
        await network.close()
      }
    }, 90_000)
  }
})
