/**
 * `pushline/react` in real Chromium: e2e/page/react/app.tsx (PushProvider + usePush('orders') in
 * <StrictMode>, React's development build) bundled in-process by esbuild against the built package,
 * served by the e2e server. It proves that the page renders what the server publishes as it
 * arrives, that StrictMode's mount-unmount-mount yields one connection and one subscription, and
 * that unmounting the component unsubscribes (and mounting it again subscribes again).
 */
import { join } from 'node:path'
import { build } from 'esbuild'
import type { Page } from 'playwright-core'
import { beforeAll, describe, expect } from 'vitest'
import { requireBuild, root, screenshot, test } from './harness.js'
import type { ReactE2E } from './page/react/app.js'

const HTML = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>pushline e2e: React</title>
    <link rel="icon" href="data:," />
    <style>
      body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d2330; }
      h1 { font-size: 18px; margin: 0 0 12px; }
      dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; }
      dt { font-weight: 600; }
      dd { margin: 0; font-family: ui-monospace, monospace; }
      ol { font-family: ui-monospace, monospace; columns: 4; }
    </style>
  </head>
  <body>
    <div id="root"></div>
    <script src="/react/app.js"></script>
  </body>
</html>
`

/** Bundles the app as a browser script; `pushline` and `pushline/react` resolve to dist/ via package.json's exports. */
async function bundleApp(): Promise<string> {
  const result = await build({
    entryPoints: [join(root, 'e2e/page/react/app.tsx')],
    bundle: true,
    write: false,
    platform: 'browser',
    format: 'iife',
    target: 'es2022',
    jsx: 'automatic',
    // React's development build: the only one in which StrictMode re-runs effects.
    define: { 'process.env.NODE_ENV': '"development"' },
    sourcemap: 'inline',
    logLevel: 'silent',
  })
  const [output] = result.outputFiles
  if (!output) throw new Error('esbuild produced no output')
  return output.text
}

let bundle: string
beforeAll(async () => {
  requireBuild()
  bundle = await bundleApp()
})

/** The frames the page sent over its WebSockets, and how many WebSockets it opened. */
function recordWebSockets(page: Page) {
  const seen = { sockets: 0, sent: [] as { type: string; channel?: string }[] }
  page.on('websocket', (socket) => {
    seen.sockets++
    socket.on('framesent', ({ payload }) => {
      if (typeof payload === 'string') seen.sent.push(JSON.parse(payload) as { type: string; channel?: string })
    })
  })
  return seen
}

const reactState = (page: Page) => page.evaluate<ReactE2E>('window.reactE2E')
const text = (page: Page, selector: string) => page.locator(selector).textContent({ timeout: 1000 }).catch(() => null)
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

describe('pushline/react (PushProvider + usePush) in StrictMode', () => {
  for (const transport of ['websocket', 'sse'] as const) {
    test(`over ${transport}: renders live data, one connection and subscription, unsubscribes on unmount`, async ({
      page,
      server,
      pageErrors,
    }) => {
      server.serve('/react/', HTML, 'text/html; charset=utf-8')
      server.serve('/react/app.js', bundle, 'text/javascript; charset=utf-8')
      const ws = recordWebSockets(page)
      const streams: string[] = []
      page.on('request', (request) => {
        if (new URL(request.url()).pathname === '/push/sse') streams.push(request.url())
      })
      const publish = (n: number) =>
        server.push.publish('orders', { n, status: n % 2 ? 'paid' : 'shipped' }, { event: 'order-update' })

      await page.goto(`${server.origin}/react/?transport=${transport}`)
      await expect.poll(() => text(page, '#status'), { timeout: 10_000 }).toBe('open')
      expect(await text(page, '#transport')).toBe(transport)
      await expect.poll(() => server.push.stats(), { timeout: 10_000 }).toMatchObject({ connections: 1, subscriptions: 1 })
      // StrictMode really re-ran the effects (development build), and that cost nothing: the
      // client connected once and never closed, the server holds one connection and one subscription.
      expect(await reactState(page)).toMatchObject({ mounts: 2, unmounts: 1, states: ['connecting', 'open'] })

      // Live data renders as it is published, one message at a time...
      for (const n of range(1, 5)) {
        await publish(n)
        await expect.poll(() => text(page, '#data'), { timeout: 5000 }).toBe(`#${n} ${n % 2 ? 'paid' : 'shipped'}`)
      }
      // ...and in a burst, where every message reaches onMessage once, in order (no second listener).
      for (const n of range(6, 30)) await publish(n)
      await expect.poll(() => text(page, '#data'), { timeout: 5000 }).toBe('#30 shipped')
      expect((await reactState(page)).received).toEqual(range(1, 30))
      expect(await page.locator('#recent li').allTextContents()).toEqual(range(1, 30).map((n) => `#${n}`))
      expect(await text(page, '#message-id')).toMatch(/^[A-Za-z0-9_]+-30$/)
      expect(server.push.stats()).toMatchObject({ connections: 1, subscriptions: 1 })
      if (transport === 'websocket') {
        expect(ws.sockets).toBe(1)
        expect(ws.sent.filter((frame) => frame.type === 'subscribe')).toEqual([expect.objectContaining({ channel: 'orders' })])
      } else {
        // One stream, opened with the subscription in its cursor.
        expect(streams).toHaveLength(1)
        expect(new URL(streams[0] as string).searchParams.get('cursor')).toBe('orders')
      }
      await screenshot(page, transport === 'websocket' ? 'react' : `react-${transport}`)

      // Unmounting the only component that uses the channel unsubscribes; the provider stays, and
      // with it the connection.
      await page.click('#toggle')
      await expect.poll(() => text(page, '#unmounted'), { timeout: 5000 }).toContain('unmounted')
      await expect.poll(() => server.push.stats(), { timeout: 10_000 }).toMatchObject({ connections: 1, subscriptions: 0 })
      if (transport === 'websocket') {
        expect(ws.sent.filter((frame) => frame.type === 'unsubscribe')).toEqual([expect.objectContaining({ channel: 'orders' })])
      }
      await publish(31)
      await new Promise((resolve) => setTimeout(resolve, 300))
      expect((await reactState(page)).received).toEqual(range(1, 30))

      // Mounting it again subscribes again (live from now), still on the same connection. This
      // time StrictMode's extra unmount-remount hits an open client: still one subscribe.
      await page.click('#toggle')
      await expect.poll(() => server.push.stats(), { timeout: 10_000 }).toMatchObject({ connections: 1, subscriptions: 1 })
      await expect.poll(() => text(page, '#data'), { timeout: 5000 }).toBe('none yet')
      await publish(32)
      await expect.poll(() => text(page, '#data'), { timeout: 5000 }).toBe('#32 shipped')
      const final = await reactState(page)
      expect(final).toMatchObject({ mounts: 4, unmounts: 3, states: ['connecting', 'open'] })
      expect(final.received).toEqual([...range(1, 30), 32])
      if (transport === 'websocket') {
        expect(ws.sockets).toBe(1)
        expect(ws.sent.filter((frame) => frame.type === 'subscribe' || frame.type === 'unsubscribe')).toEqual([
          expect.objectContaining({ type: 'subscribe', channel: 'orders' }),
          expect.objectContaining({ type: 'unsubscribe', channel: 'orders' }),
          expect.objectContaining({ type: 'subscribe', channel: 'orders' }),
        ])
      } else {
        // A stream per change of subscriptions: the first, one without `orders`, one with it again.
        const cursors = streams.map((url) => new URL(url).searchParams.get('cursor'))
        expect(cursors).toEqual(['orders', '', expect.stringMatching(/^orders/)])
      }
      expect(pageErrors).toEqual([])
    })
  }
})
