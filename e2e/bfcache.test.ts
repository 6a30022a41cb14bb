/**
 * The back-forward cache in real Chromium. The page (e2e/page/bfcache/, the script-tag bundle)
 * subscribes, receives, and then the tab goes to another page of the origin and comes back. The
 * client must close its connection on `pagehide`, keeping subscriptions, positions and pending
 * publishes, so that the server holds nothing for a page frozen in the cache; on `pageshow` it must
 * reconnect at once and resume: what was published meanwhile arrives exactly once, in order.
 *
 * What Chromium (156) does, found out for these tests:
 *  - Playwright launches it with `--disable-back-forward-cache` (a default switch of playwright-core),
 *    so this file launches its own Chromium without that switch (CHROMIUM_ARGS of harness.ts otherwise).
 *  - A restore fires no `load`, which `page.goBack()` waits for by default (it times out), so
 *    going back waits for the commit, then for the page's own `pageshow`.
 *  - A page served with `Cache-Control: no-store` (as the harness serves every page) that ever
 *    opened a WebSocket is never restored, even when the socket was closed on `pagehide`: the
 *    navigation's `notRestoredReasons` say `websocket-used-with-ccns` (with
 *    `response-cache-control-no-store`, `masked`). Without WebSockets, or with a cacheable page,
 *    `no-store` does not keep a page out. So the pages here are served with `no-cache`, from a
 *    server of this file that the harness's pushline server is attached to, and one test pins the
 *    `no-store` case.
 *  - An open connection does not keep a cacheable page out: with the client's lifecycle handling
 *    off, the page is restored too, but the server holds the connection (and its subscriptions)
 *    all the time the page is frozen. Closing on `pagehide` is what frees it, which the control
 *    tests show.
 */
import { readFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { join } from 'node:path'
import type { BrowserContext, Page } from 'playwright-core'
import { describe, expect } from 'vitest'
import { launchChromium, root, test as e2eTest, type E2EServer } from './harness.js'

/** What e2e/page/bfcache/app.js keeps in `window.bfcache` and `window.received`. */
interface PageState {
  documentId: string
  runs: number
  pageEvents: { type: 'pageshow' | 'pagehide'; persisted: boolean }[]
  states: string[]
  transports: string[]
  errors: string[]
  echoes: { data: unknown; offset: number }[]
  gaps: unknown[]
  subscribed: string[]
  hidePublish: { ok: true; offset: number } | { ok: false; code: string } | null | undefined
  received: { n: number; offset: number; id: string }[]
  /** The document's navigation timing entry: `type` and, for a back/forward that was not restored, why. */
  navigation: { type: string; notRestoredReasons: { reasons: { reason: string }[] } | null } | undefined
}

const pageState = (page: Page) =>
  page.evaluate(() => {
    const entry = performance.getEntriesByType('navigation')[0] as
      | (PerformanceNavigationTiming & { notRestoredReasons?: unknown })
      | undefined
    const w = window as unknown as { bfcache: Omit<PageState, 'received' | 'navigation'>; received: PageState['received'] }
    return {
      ...w.bfcache,
      received: w.received,
      // A platform object: through JSON to take its fields.
      navigation: entry && { type: entry.type, notRestoredReasons: JSON.parse(JSON.stringify(entry.notRestoredReasons ?? null)) },
    } as PageState
  })
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)
/** Messages published before leaving, while in the cache, and after coming back. */
const COUNT = 20

/** The pages of e2e/page/bfcache/ and the bundle, by URL path. */
const SITE_FILES: Record<string, { file: string; contentType: string }> = {
  '/bfcache/': { file: 'e2e/page/bfcache/index.html', contentType: 'text/html; charset=utf-8' },
  '/bfcache/app.js': { file: 'e2e/page/bfcache/app.js', contentType: 'text/javascript; charset=utf-8' },
  '/bfcache/away.html': { file: 'e2e/page/bfcache/away.html', contentType: 'text/html; charset=utf-8' },
  '/pushline.iife.min.js': { file: 'dist/pushline.iife.min.js', contentType: 'text/javascript; charset=utf-8' },
}
const readSiteFiles = async () =>
  Promise.all(
    Object.entries(SITE_FILES).map(async ([path, { file, contentType }]) => ({
      path,
      contentType,
      body: await readFile(join(root, file)),
    })),
  )

interface Site {
  /** Origin of the cacheable pages, with the harness's pushline server at `/push`. */
  readonly origin: string
}

const test = e2eTest
  /**
   * Replaces the harness's Chromium for this file: the same, but with the back-forward cache that
   * playwright-core's default `--disable-back-forward-cache` turns off. Fresh profile, removed after.
   */
  .extend('chromium', { scope: 'file' }, async ({}, { onCleanup }): Promise<BrowserContext> => {
    const launched = await launchChromium({ ignoreDefaultArgs: ['--disable-back-forward-cache'] })
    onCleanup(() => launched.close())
    return launched.context
  })
  /**
   * The pages served with `Cache-Control: no-cache` (always revalidated, but cacheable in the
   * back-forward cache), on a server of their own with the test's pushline server attached.
   */
  .extend('site', async ({ server }, { onCleanup }): Promise<Site> => {
    const files = new Map((await readSiteFiles()).map((entry) => [entry.path, entry]))
    const http: Server = createServer((req, res) => {
      const served = req.method === 'GET' ? files.get(new URL(req.url ?? '/', 'http://localhost').pathname) : undefined
      if (!served) return void res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found')
      res.writeHead(200, { 'Content-Type': served.contentType, 'Cache-Control': 'no-cache' }).end(served.body)
    })
    // Upgraded WebSockets leave the http server's bookkeeping (closeAllConnections misses them), so keep every socket here.
    const sockets = new Set<Socket>()
    http.on('connection', (socket: Socket) => {
      sockets.add(socket)
      socket.once('close', () => sockets.delete(socket))
    })
    server.push.attach(http, { path: '/push' })
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
    onCleanup(async () => {
      const closed = new Promise<void>((resolve) => http.close(() => resolve()))
      for (const socket of sockets) socket.destroy()
      await closed
    })
    return { origin: `http://127.0.0.1:${(http.address() as AddressInfo).port}` }
  })

/** Opens the page on `transport` and waits until both subscriptions are live on the server. */
async function open(page: Page, server: E2EServer, origin: string, transport: string, lifecycle = true, share = false) {
  await page.goto(`${origin}/bfcache/?transport=${transport}${lifecycle ? '' : '&lifecycle=off'}${share ? '&share=1' : ''}`)
  await expect.poll(async () => (await pageState(page)).states.at(-1), { timeout: 10_000 }).toBe('open')
  await expect
    .poll(async () => [...(await pageState(page)).subscribed].sort(), { timeout: 10_000 })
    .toEqual(['bfcache', 'bfcache-back'])
  await expect.poll(() => server.push.stats(), { timeout: 10_000 }).toMatchObject({ connections: 1, subscriptions: 2 })
}

async function publish(server: E2EServer, from: number, to: number) {
  for (const n of range(from, to)) await server.push.publish('bfcache', { n })
}

/** Navigates the tab to the origin's other page, which puts the first one in the cache (if it may go there). */
async function leave(page: Page, origin: string) {
  await page.goto(`${origin}/bfcache/away.html`)
  expect(await page.title()).toBe('pushline e2e: elsewhere')
}

/**
 * Goes back and waits until the page is shown: restored (its `pageshow` with `persisted`), or else
 * loaded anew (a fresh document whose navigation is `back_forward`). Returns how long it took.
 */
async function goBack(page: Page): Promise<number> {
  const started = Date.now()
  // A restore fires no `load`, which goBack would wait for.
  await page.goBack({ waitUntil: 'commit' })
  await page.waitForFunction(
    () => {
      const state = (window as unknown as { bfcache?: PageState }).bfcache
      if (!state) return false
      const shows = state.pageEvents.filter((event) => event.type === 'pageshow')
      const entry = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming | undefined
      const reloaded = document.readyState === 'complete' && entry?.type === 'back_forward' && shows.length > 0
      return shows.some((event) => event.persisted) || reloaded
    },
    undefined,
    { timeout: 10_000 },
  )
  return Date.now() - started
}

/** Asserts the page came back from the cache: same JS heap, `pageshow` persisted; else says why not. */
function expectRestored(restored: PageState, before: PageState) {
  const why = `not restored from the back-forward cache: ${JSON.stringify(restored.navigation)}`
  expect(restored.pageEvents, why).toEqual([
    { type: 'pageshow', persisted: false },
    { type: 'pagehide', persisted: true },
    { type: 'pageshow', persisted: true },
  ])
  expect(restored.documentId, why).toBe(before.documentId)
  // The scripts did not run again, and the document's navigation is still the first one.
  expect(restored.runs, why).toBe(1)
  expect(restored.navigation, why).toEqual({ type: 'navigate', notRestoredReasons: null })
}

describe('the back-forward cache (pagehide / pageshow)', () => {
  for (const transport of ['websocket', 'sse'] as const) {
    test(`over ${transport}: closed while the page is cached, resumed exactly once when it is restored`, async ({
      page,
      server,
      site,
      pageErrors,
      annotate,
    }) => {
      await open(page, server, site.origin, transport)
      await publish(server, 1, COUNT)
      await page.waitForFunction(`window.received.length >= ${COUNT}`, undefined, { timeout: 10_000 })
      const before = await pageState(page)

      await leave(page, site.origin)
      // The client closed its connection on pagehide: the server holds nothing for the frozen page.
      await expect.poll(() => server.push.stats(), { timeout: 5000 }).toMatchObject({ connections: 0, subscriptions: 0 })
      await publish(server, COUNT + 1, 2 * COUNT)
      // The publish the page made in its pagehide listener waits in the client's outbox.
      expect(server.published.filter((request) => request.channel === 'bfcache-back')).toEqual([])

      const wentBack = Date.now()
      const backMs = await goBack(page)
      const restored = await pageState(page)
      expectRestored(restored, before)

      // Reconnected (pageshow; no reconnect is scheduled while hidden) and resumed from its position.
      await expect.poll(async () => (await pageState(page)).states.at(-1), { timeout: 5000 }).toBe('open')
      const reopenMs = Date.now() - wentBack
      await expect.poll(async () => (await pageState(page)).received.length, { timeout: 10_000 }).toBeGreaterThanOrEqual(2 * COUNT)
      // Then live again. The stream is ordered: a duplicate of anything replayed would come before the last.
      await publish(server, 2 * COUNT + 1, 3 * COUNT)
      await expect.poll(async () => (await pageState(page)).received.at(-1)?.n, { timeout: 10_000 }).toBe(3 * COUNT)

      // The pending publish went out once, after the restore, and came back once.
      await expect.poll(async () => (await pageState(page)).hidePublish, { timeout: 10_000 }).toEqual({ ok: true, offset: 1 })
      await expect
        .poll(async () => (await pageState(page)).echoes, { timeout: 10_000 })
        .toEqual([{ data: { from: 'pagehide' }, offset: 1 }])
      expect(server.published.filter((request) => request.channel === 'bfcache-back')).toHaveLength(1)

      const final = await pageState(page)
      expect(final.received.map((m) => m.n)).toEqual(range(1, 3 * COUNT))
      expect(final.received.map((m) => m.offset)).toEqual(range(1, 3 * COUNT))
      expect(new Set(final.received.map((m) => m.id)).size).toBe(3 * COUNT)
      expect(final.gaps).toEqual([])
      // A clean close: no error reported, and no drop noticed before pagehide.
      expect(final.errors).toEqual([])
      expect(final.states).toEqual(['connecting', 'open', 'reconnecting', 'open'])
      expect(final.transports).toEqual([transport])
      // Nothing of the old connection is left on the server.
      expect(server.push.stats()).toMatchObject({ connections: 1, subscriptions: 2 })
      expect(pageErrors).toEqual([])
      await annotate(`back from the cache in ${backMs} ms, open again ${reopenMs} ms after going back; ${3 * COUNT} messages once`)
    })

    test(`over ${transport}, control: with lifecycle: null it is restored too, but the server holds the connection meanwhile`, async ({
      page,
      server,
      site,
    }) => {
      await open(page, server, site.origin, transport, false)
      await publish(server, 1, COUNT)
      await page.waitForFunction(`window.received.length >= ${COUNT}`, undefined, { timeout: 10_000 })
      const before = await pageState(page)

      await leave(page, site.origin)
      await publish(server, COUNT + 1, 2 * COUNT)
      // The client that closes on pagehide is gone from the server at once; this one stays.
      const until = Date.now() + 1000
      while (Date.now() < until) {
        expect(server.push.stats()).toMatchObject({ connections: 1, subscriptions: 2 })
        await sleep(100)
      }

      await goBack(page)
      // Restored with its connection open: the open connection did not keep it out.
      expectRestored(await pageState(page), before)
    })
  }

  test('a tab that leads a shared connection hands it over on pagehide, is restored, and follows', async ({
    chromium,
    page,
    server,
    site,
    pageErrors,
  }) => {
    // The leader: the first tab to ask for the lock. A cached page holding a Web Lock that another
    // tab waits for is evicted, so the leader must give it up on pagehide to be restored.
    await open(page, server, site.origin, 'sse', true, true)
    const follower = await chromium.newPage()
    try {
      await open(follower, server, site.origin, 'sse', true, true)
      await publish(server, 1, COUNT)
      for (const each of [page, follower]) await each.waitForFunction(`window.received.length >= ${COUNT}`, undefined, { timeout: 10_000 })
      const before = await pageState(page)

      await leave(page, site.origin)
      // The follower leads now: one connection, opened by it, and it keeps receiving.
      await expect.poll(() => server.push.stats(), { timeout: 5000 }).toMatchObject({ connections: 1, subscriptions: 2 })
      await publish(server, COUNT + 1, 2 * COUNT)
      await follower.waitForFunction(`window.received.length >= ${2 * COUNT}`, undefined, { timeout: 10_000 })

      await goBack(page)
      expectRestored(await pageState(page), before)
      await publish(server, 2 * COUNT + 1, 3 * COUNT)
      for (const each of [page, follower]) {
        await expect.poll(async () => (await pageState(each)).received.at(-1)?.n, { timeout: 10_000 }).toBe(3 * COUNT)
        const final = await pageState(each)
        expect(final.received.map((m) => m.n)).toEqual(range(1, 3 * COUNT))
        expect(final.gaps).toEqual([])
      }
      // The publish made in pagehide went out once, through the new leader.
      await expect.poll(async () => (await pageState(page)).hidePublish, { timeout: 10_000 }).toEqual({ ok: true, offset: 1 })
      expect(server.push.stats()).toMatchObject({ connections: 1 })
      expect(pageErrors).toEqual([])
    } finally {
      await follower.close()
    }
  })

  test('over websocket, a page served with Cache-Control: no-store is not restored (websocket-used-with-ccns)', async ({
    page,
    server,
  }) => {
    // The harness's own server, which sends `no-store` with everything it serves. The reason is
    // sticky: a WebSocket was used at all, so the client closing it on pagehide cannot help.
    for (const { path, body, contentType } of await readSiteFiles()) {
      if (path !== '/pushline.iife.min.js') server.serve(path, body, contentType)
    }
    await open(page, server, server.origin, 'websocket')
    const before = await pageState(page)
    await leave(page, server.origin)
    await expect.poll(() => server.push.stats(), { timeout: 5000 }).toMatchObject({ connections: 0, subscriptions: 0 })

    await goBack(page)
    const reloaded = await pageState(page)
    // A new document: scripts ran again, one pageshow, not persisted.
    expect(reloaded.documentId).not.toBe(before.documentId)
    expect(reloaded.runs).toBe(2)
    expect(reloaded.pageEvents).toEqual([{ type: 'pageshow', persisted: false }])
    expect(reloaded.navigation?.type).toBe('back_forward')
    const reasons = reloaded.navigation?.notRestoredReasons?.reasons.map(({ reason }) => reason)
    expect(reasons).toContain('websocket-used-with-ccns')
    expect(reasons).toContain('response-cache-control-no-store')
  })
})
