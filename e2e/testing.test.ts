/**
 * pushline/testing in real Chromium: e2e/page/testing/app.ts runs msw's browser worker (the service
 * worker msw ships, served at /mockServiceWorker.js) with the kit's handlers, and the real
 * PushClient of the built package against them: WebSocket through msw's in-page interception,
 * SSE, long and short polling and HTTP publishes through the service worker. Per transport: pushed
 * messages with their positions, a publish and its ack, a disconnect and the resume, a gap; and
 * the fallback when transports are refused.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { build } from 'esbuild'
import type { Page } from 'playwright-core'
import { beforeAll, describe, expect } from 'vitest'
import { requireBuild, root, test } from './harness.js'
import type { RunResult } from './page/testing/app.js'

const HTML = `<!doctype html>
<html lang="en">
  <head><meta charset="utf-8" /><title>pushline e2e: testing kit</title><link rel="icon" href="data:," /></head>
  <body><script src="/testing/app.js"></script></body>
</html>
`

let bundle: string
let serviceWorker: Buffer
beforeAll(async () => {
  requireBuild()
  const result = await build({
    entryPoints: [join(root, 'e2e/page/testing/app.ts')],
    bundle: true,
    write: false,
    platform: 'browser',
    format: 'iife',
    target: 'es2022',
    sourcemap: 'inline',
    logLevel: 'silent',
  })
  const [output] = result.outputFiles
  if (!output) throw new Error('esbuild produced no output')
  bundle = output.text
  serviceWorker = await readFile(join(root, 'node_modules/msw/lib/mockServiceWorker.js'))
})

type Transport = 'websocket' | 'sse' | 'long-polling' | 'short-polling'

/** Serves the page and msw's worker, opens the page and waits until the worker controls it. */
async function openPage(page: Page, server: { origin: string; serve(path: string, body: string | Uint8Array, type: string): void }) {
  server.serve('/testing/', HTML, 'text/html; charset=utf-8')
  server.serve('/testing/app.js', bundle, 'text/javascript; charset=utf-8')
  server.serve('/mockServiceWorker.js', serviceWorker, 'text/javascript; charset=utf-8')
  await page.goto(`${server.origin}/testing/`)
  await page.evaluate('window.testingE2E.ready')
}

const run = (page: Page, transport: Transport | 'auto', refused: Transport[] = []) =>
  page.evaluate<RunResult, [Transport | 'auto', Transport[]]>(([name, list]) => window.testingE2E.run(name, list), [transport, refused])

describe('pushline/testing with msw in Chromium', () => {
  test('serves every web transport to the real client: messages, publishes, resume and gaps', async ({ page, server, pageErrors }) => {
    /** Requests to the mock's base URL that reached the real server: none may (msw answers them). */
    const leaked: string[] = []
    const fromWorker: string[] = []
    page.on('requestfinished', async (request) => {
      const { pathname } = new URL(request.url())
      if (!pathname.startsWith('/mocked-push')) return
      if ((await request.response())?.fromServiceWorker()) fromWorker.push(pathname)
      else leaked.push(request.url())
    })
    await openPage(page, server)
    for (const transport of ['websocket', 'sse', 'long-polling', 'short-polling'] as const) {
      const result = await run(page, transport)
      expect(result, transport).toMatchObject({
        transport,
        ids: ['mock1-1', 'mock1-2', 'mock1-3', 'mock1-4', 'mock1-7'],
        data: ['one', 'two', 'from the page', 'while away', 'after the gap'],
        gaps: [{ channel: 'news', reason: 'history-exhausted', from: 'mock1-4', to: 'mock1-6' }],
        ackId: 'mock1-3',
        published: [{ channel: 'news', data: 'from the page', via: transport === 'websocket' ? 'websocket' : 'http', ackId: 'mock1-3' }],
      })
      // Subscribed live, then resumed after the disconnect from where it was.
      expect(result.subscriptions[0], transport).toEqual({ channel: 'news', since: undefined, rewind: 0, transport })
      expect(result.subscriptions, transport).toContainEqual({ channel: 'news', since: 'mock1-3', rewind: 0, transport })
    }
    expect(leaked).toEqual([])
    expect(new Set(fromWorker)).toEqual(new Set(['/mocked-push/poll', '/mocked-push/publish']))
    // The disconnects fail the page's streams and held polls as a network cut does, which Chromium
    // logs; nothing else may fail.
    expect(pageErrors.filter((error) => !error.endsWith('Failed to load resource: net::ERR_FAILED'))).toEqual([])
  })

  test('refusing transports makes the client fall back', async ({ page, server, pageErrors }) => {
    await openPage(page, server)
    // The run's disconnect, 5 s or less after the connection opened, then marks the fallback
    // `unstable` and moves on once more (protocol.md 7.2): what counts is where it first landed.
    const toSse = await run(page, 'auto', ['websocket'])
    expect(toSse.fallbacks[0]).toEqual({ from: 'websocket', to: 'sse', reason: 'handshake-failed' })
    expect(toSse.subscriptions[0]).toEqual({ channel: 'news', since: undefined, rewind: 0, transport: 'sse' })
    expect(toSse.ids).toHaveLength(5)
    const toPolls = await run(page, 'auto', ['websocket', 'sse'])
    expect(toPolls.fallbacks).toContainEqual({ from: 'sse', to: 'long-polling', reason: 'handshake-failed' })
    expect(toPolls.subscriptions[0]).toEqual({ channel: 'news', since: undefined, rewind: 0, transport: 'long-polling' })
    expect(toPolls.ids).toHaveLength(5)
    expect(toPolls.subscriptions.map((subscription) => subscription.transport)).not.toContain('websocket')
    expect(pageErrors.filter((error) => !error.endsWith('Failed to load resource: net::ERR_FAILED'))).toEqual([])
  })
})
