/**
 * Network outages in real Chromium, with Playwright's offline emulation (`context.setOffline`), while
 * the server publishes without pause. The page is e2e/page/ (the script-tag bundle); the client must
 * notice the outage, come back when the network does, and deliver every message exactly once and in
 * order across it: no loss, no duplicates, no gap.
 *
 * What Chromium (156) does, found out for these tests: offline emulation fails every new request and
 * WebSocket at once (net::ERR_INTERNET_DISCONNECTED) and fires `offline`/`online`, but connections
 * that are already open are not cut, even to loopback. An open WebSocket is frozen: its frames are
 * held back while offline and delivered afterwards. An open EventSource stream is not touched at all:
 * it keeps delivering while `navigator.onLine` is false. So emulation alone is not an outage. The
 * tests therefore model a real one in two ways:
 *  - offline plus the server's TCP connections destroyed (what a lost network does to connections
 *    before long): the client sees its link die (the iframe stream only by its heartbeat deadline:
 *    Chromium fires no `load` for a cut document), it makes no reconnect attempt while the browser
 *    says it is offline (they would only be refused), and it must resume once online; for every
 *    transport;
 *  - offline alone, for WebSocket: the frozen socket looks open but carries nothing, which only the
 *    client's heartbeat deadline can catch (the half-open link, in a real browser).
 * A last case checks that going online ends the reconnect delay at once, however long it is.
 */
import type { BrowserContext, Page } from 'playwright-core'
import { describe, expect } from 'vitest'
import { screenshot, startPublisher, test, type E2EServer } from './harness.js'

/** What e2e/page/app.js keeps in `window.e2e`. */
interface PageState {
  states: string[]
  transports: string[]
  errors: string[]
  messages: { event: string; data: { n: number }; offset: number; id: string }[]
  gaps: unknown[]
  subscribed: string[]
}

const pageState = (page: Page) => page.evaluate<PageState>('window.e2e')
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)
/** Server heartbeat (the harness's) + the page's grace: the client's liveness deadline. */
const HEARTBEAT_MS = 1000
const GRACE_MS = 500
/** Reconnect backoff cap of the page, so that recovery after the outage is prompt and bounded. */
const MAX_DELAY_MS = 1000
/** Short-polling interval of the page (the default, 3 s, would make the outage slow to notice). */
const POLL_MS = 250


/**
 * Opens the page on `transport`, waits until it is open and subscribed, and starts publishing.
 * `query` adds to or overrides the page's client options (e2e/page/app.js).
 */
async function openAndPublish(page: Page, server: E2EServer, transport: string, query: Record<string, number> = {}) {
  const params = new URLSearchParams({ transport })
  for (const [name, value] of Object.entries({ graceMs: GRACE_MS, maxDelayMs: MAX_DELAY_MS, pollMs: POLL_MS, ...query })) {
    params.set(name, String(value))
  }
  await page.goto(`${server.origin}/?${params}`)
  await expect.poll(async () => (await pageState(page)).states.at(-1), { timeout: 10_000 }).toBe('open')
  // Confirmed by the server (short polls leave nothing on it to count between polls).
  await expect.poll(async () => (await pageState(page)).subscribed.length, { timeout: 10_000 }).toBe(2)
  const publisher = startPublisher(server, 'e2e')
  await expect.poll(async () => (await pageState(page)).messages.length, { timeout: 10_000 }).toBeGreaterThanOrEqual(20)
  return publisher
}

/**
 * Goes back online, waits for the client to reopen, publishes a little longer, and checks that
 * every message arrived exactly once, in order, with no gap. Returns how long reopening took.
 */
async function recover(
  page: Page,
  context: BrowserContext,
  server: E2EServer,
  transport: string,
  publisher: ReturnType<typeof startPublisher>,
) {
  const before = (await pageState(page)).states.length
  await context.setOffline(false)
  const online = Date.now()
  await expect
    .poll(async () => (await pageState(page)).states.slice(before).includes('open'), { timeout: 10_000 })
    .toBe(true)
  const reopenMs = Date.now() - online
  const reopenedAt = publisher.count
  await expect.poll(() => publisher.count, { timeout: 5000 }).toBeGreaterThan(reopenedAt + 20)
  const total = await publisher.stop()
  await expect.poll(async () => (await pageState(page)).messages.length, { timeout: 10_000 }).toBeGreaterThanOrEqual(total)
  await sleep(200)
  const { messages, gaps } = await pageState(page)
  expect(messages.map((m) => m.data.n)).toEqual(range(1, total))
  expect(messages.map((m) => m.offset)).toEqual(range(1, total))
  expect(gaps).toEqual([])
  // Nothing of the old link is left on the server. (Polls hold a connection only while one is out.)
  if (!transport.endsWith('polling')) expect(server.push.stats()).toMatchObject({ connections: 1, subscriptions: 2 })
  return { reopenMs, total }
}

describe('offline and back (context.setOffline) while the server publishes', () => {
  for (const transport of ['websocket', 'sse', 'long-polling', 'short-polling', 'iframe'] as const) {
    test(`over ${transport}: an outage that cuts the link is noticed, outlived and resumed exactly once`, async ({
      page,
      server,
      chromium,
      pageErrors,
      annotate,
    }) => {
      const publisher = await openAndPublish(page, server, transport)
      try {
        const errorsBefore = (await pageState(page)).errors.length
        await chromium.setOffline(true)
        expect(server.dropConnections()).toBeGreaterThan(0)
        await expect.poll(async () => (await pageState(page)).states.at(-1), { timeout: 5000 }).toBe('reconnecting')

        // Offline for a while: the client waits for `online`, no attempt reaches the server.
        const offlineUntil = Date.now() + 2000
        while (Date.now() < offlineUntil) {
          expect(server.push.stats().connections).toBe(0)
          expect((await pageState(page)).states.at(-1)).toBe('reconnecting')
          await sleep(100)
        }
        const { errors } = await pageState(page)
        // The drop itself, and no attempt while offline (each would be refused, and reported).
        expect(errors.length - errorsBefore, errors.join('\n')).toBe(1)
        const receivedWhileOffline = (await pageState(page)).messages.length
        expect(publisher.count - receivedWhileOffline).toBeGreaterThan(50)

        const { reopenMs, total } = await recover(page, chromium, server, transport, publisher)
        const seen = errors.slice(errorsBefore).join(' | ')
        await annotate(`reopened ${reopenMs} ms after going online; ${total} messages, exactly once; errors: ${seen}`)
        // Backoff is capped at MAX_DELAY_MS, plus a handshake on loopback.
        expect(reopenMs).toBeLessThan(MAX_DELAY_MS + 2000)
        const { states, transports } = await pageState(page)
        expect(states).toEqual(['connecting', 'open', 'reconnecting', 'open'])
        expect(transports).toEqual([transport])
        await screenshot(page, `offline-${transport}`)
        // Failed loads are logged to the console by Chromium; nothing may be thrown.
        expect(pageErrors.filter((error) => error.startsWith('uncaught'))).toEqual([])
      } finally {
        await publisher.stop()
        await chromium.setOffline(false)
      }
    })
  }

  test('over websocket: offline alone freezes the socket; the heartbeat deadline catches it, then it resumes', async ({
    page,
    server,
    chromium,
    pageErrors,
    annotate,
  }) => {
    const publisher = await openAndPublish(page, server, 'websocket')
    try {
      await chromium.setOffline(true)
      const offline = Date.now()
      // Nothing was cut: the server still holds the connection, the browser holds its frames.
      await sleep(300)
      expect(server.push.stats()).toMatchObject({ connections: 1, subscriptions: 2 })
      const frozenAt = (await pageState(page)).messages.length
      await sleep(300)
      expect((await pageState(page)).messages.length - frozenAt).toBeLessThan(5)
      // The client notices while still offline, from the silence alone.
      await expect
        .poll(async () => (await pageState(page)).states.at(-1), { timeout: HEARTBEAT_MS + GRACE_MS + 3000 })
        .toBe('reconnecting')
      const noticedMs = Date.now() - offline
      expect(noticedMs).toBeLessThan(HEARTBEAT_MS + GRACE_MS + 2000)
      await sleep(500)
      expect((await pageState(page)).states.at(-1)).toBe('reconnecting')

      const { reopenMs, total } = await recover(page, chromium, server, 'websocket', publisher)
      const { states, errors } = await pageState(page)
      await annotate(`noticed after ${noticedMs} ms offline; reopened ${reopenMs} ms after online; ${total} messages once`)
      expect(states).toEqual(['connecting', 'open', 'reconnecting', 'open'])
      expect(errors[0]).toMatch(/^HEARTBEAT_TIMEOUT/)
      expect(pageErrors.filter((error) => error.startsWith('uncaught'))).toEqual([])
    } finally {
      await publisher.stop()
      await chromium.setOffline(false)
    }
  })

  /**
   * Browser lifecycle handling: a client waiting out its reconnect delay (30 s here) reconnects as
   * soon as the browser says it is back online.
   */
  test('over websocket: going back online reconnects at once, not after the reconnect delay', async ({
    page,
    server,
    chromium,
  }) => {
    const publisher = await openAndPublish(page, server, 'websocket', { retryMs: 30_000 })
    try {
      await chromium.setOffline(true)
      server.dropConnections()
      await expect.poll(async () => (await pageState(page)).states.at(-1), { timeout: 5000 }).toBe('reconnecting')
      await sleep(1000)
      await chromium.setOffline(false)
      await expect
        .poll(async () => (await pageState(page)).states, { timeout: 2000 })
        .toEqual(['connecting', 'open', 'reconnecting', 'open'])
      const total = await publisher.stop()
      await expect.poll(async () => (await pageState(page)).messages.length, { timeout: 5000 }).toBe(total)
      expect((await pageState(page)).messages.map((m) => m.data.n)).toEqual(range(1, total))
    } finally {
      await publisher.stop()
      await chromium.setOffline(false)
    }
  })
})
