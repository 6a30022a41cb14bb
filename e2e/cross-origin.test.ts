/**
 * Cross-origin in real Chromium: a page on one origin (the fixture's server) using a pushline
 * server on another port, as an app on `app.example.com` (or a dev server on :5173) using
 * `push.example.com` does. With the page's origin in `allowedOrigins`, SSE and both polls work,
 * publishing included (CORS with a preflight); with an origin not allowed, every transport is
 * refused, the WebSocket before its handshake.
 */
import type { Page } from 'playwright-core'
import { describe, expect, onTestFinished } from 'vitest'
import { startE2EServer, test } from './harness.js'

interface CrossOriginState {
  states: string[]
  errors: string[]
  messages: unknown[]
  acks: unknown[]
  publishErrors: string[]
}

/** The page: a client of `pushUrl` over one transport that records what happens. */
const PAGE = `<!doctype html><meta charset="utf-8"><title>cross-origin</title>
<script src="/pushline.iife.min.js"></script>
<script>
  const params = new URLSearchParams(location.search)
  const transport = params.get('transport')
  const state = (window.crossOrigin = { states: [], errors: [], messages: [], acks: [], publishErrors: [] })
  const client = new Pushline.PushClient({
    url: params.get('push'),
    transports: [transport === 'short-polling' ? Pushline.shortPolling({ intervalMs: 200 }) : transport],
    reconnect: { initialDelayMs: 100, maxDelayMs: 500 },
    ...(params.get('token') ? { token: () => params.get('token') } : {}),
  })
  client.on('state', (s) => state.states.push(s))
  client.on('error', (e) => state.errors.push(e.code + ': ' + e.message))
  client.subscribe('news', (m) => state.messages.push(m.data))
  client.connect()
  window.publishBack = () =>
    client.publish('back', { from: location.origin }).then(
      (ack) => state.acks.push(ack),
      (error) => state.publishErrors.push(error.code),
    )
</script>`

const pageState = (page: Page) => page.evaluate<CrossOriginState>('window.crossOrigin')

describe('a page using a push server on another origin', () => {
  for (const transport of ['sse', 'long-polling', 'short-polling'] as const) {
    test(`${transport}: works with the page's origin allowed, and publishes back`, async ({ page, server }) => {
      const push = await startE2EServer({ allowedOrigins: [server.origin] })
      onTestFinished(() => push.close())
      server.serve('/cross.html', PAGE, 'text/html; charset=utf-8')
      await page.goto(`${server.origin}/cross.html?transport=${transport}&push=${encodeURIComponent(push.pushUrl)}`)
      await expect.poll(async () => (await pageState(page)).states.at(-1), { timeout: 15_000 }).toBe('open')
      if (transport !== 'short-polling') await expect.poll(() => push.push.stats().subscriptions, { timeout: 10_000 }).toBe(1)
      else await new Promise((resolve) => setTimeout(resolve, 500))
      for (const n of [1, 2, 3]) await push.push.publish('news', { n })
      await expect.poll(async () => (await pageState(page)).messages, { timeout: 10_000 }).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }])
      await page.evaluate('window.publishBack()')
      await expect.poll(async () => (await pageState(page)).acks.length, { timeout: 10_000 }).toBe(1)
      expect(push.published.map((request) => request.data)).toEqual([{ from: server.origin }])
      expect((await pageState(page)).publishErrors).toEqual([])
    })
  }

  for (const transport of ['websocket', 'sse', 'long-polling', 'short-polling'] as const) {
    // SSE in a browser reads its stream over fetch then (a native EventSource sends no header).
    test(`${transport}: sends a token the server requires, in a header or the WebSocket subprotocol`, async ({ page, server }) => {
      const tokens: (string | undefined)[] = []
      const push = await startE2EServer({
        allowedOrigins: [server.origin],
        authenticate: ({ token }) => {
          tokens.push(token)
          return token === 's3cret' ? { userId: 'page' } : null
        },
      })
      onTestFinished(() => push.close())
      server.serve('/cross.html', PAGE, 'text/html; charset=utf-8')
      await page.goto(`${server.origin}/cross.html?transport=${transport}&token=s3cret&push=${encodeURIComponent(push.pushUrl)}`)
      await expect.poll(async () => (await pageState(page)).states.at(-1), { timeout: 15_000 }).toBe('open')
      await expect.poll(() => push.push.stats().subscriptions, { timeout: 10_000 }).toBeGreaterThanOrEqual(transport === 'short-polling' ? 0 : 1)
      if (transport === 'short-polling') await new Promise((resolve) => setTimeout(resolve, 500))
      await push.push.publish('news', { n: 1 })
      await expect.poll(async () => (await pageState(page)).messages, { timeout: 10_000 }).toEqual([{ n: 1 }])
      expect(tokens.length).toBeGreaterThan(0)
      expect(tokens.every((token) => token === 's3cret')).toBe(true)
      expect((await pageState(page)).errors).toEqual([])
    })

    test(`${transport}: is refused for an origin not allowed`, async ({ page, server }) => {
      const push = await startE2EServer({ allowedOrigins: ['https://app.example.com'] })
      onTestFinished(() => push.close())
      server.serve('/cross.html', PAGE, 'text/html; charset=utf-8')
      await page.goto(`${server.origin}/cross.html?transport=${transport}&push=${encodeURIComponent(push.pushUrl)}`)
      await expect.poll(async () => (await pageState(page)).errors.length, { timeout: 15_000 }).toBeGreaterThanOrEqual(2)
      const { states, messages, errors } = await pageState(page)
      // A poll without a token is a simple request: the page may read the refusal's body, so the
      // client can say why. A WebSocket's 403 and a native EventSource's error hide it.
      if (transport.endsWith('polling')) expect(errors[0]).toMatch(/^ORIGIN_REJECTED: origin http:\/\/127\.0\.0\.1:\d+ is not allowed$/)
      else expect(errors[0]).toMatch(/^TRANSPORT_FAILED/)
      expect(states).not.toContain('open')
      expect(messages).toEqual([])
      expect(push.push.stats().connections).toBe(0)
    })
  }
})
