/**
 * Negotiation in real Chromium behind a real nginx (test/helpers/nginx.ts), on a first visit (each
 * test's proxy has its own port, so nothing is remembered for it): the page (e2e/page/, the
 * script-tag bundle, `?transport=auto`: the default list) must get its first message without waiting
 * out a handshake deadline, settle on the transport that works behind the proxy, and deliver every
 * message once and in order from the first. Behind the gzip-buffering proxy, long polling raced
 * against the silent SSE stream delivers first while the stream is pending. The times are printed,
 * and the bound asserted is the handshake deadline, which the client used to wait out.
 */
import type { Page } from 'playwright-core'
import { expect } from 'vitest'
import { startNginx, type NginxMode } from '../test/helpers/nginx.js'
import { describeWithBinary } from '../test/helpers/system-binary.js'
import { test, type E2EServer } from './harness.js'

interface PageState {
  states: string[]
  transports: string[]
  messages: { data: { n: number }; offset: number }[]
  fallbacks: { from: string; to: string; reason: string }[]
  firstMessage?: { ms: number; transport: string }
}

const pageState = (page: Page) => page.evaluate<PageState>('window.e2e')
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
const HANDSHAKE_TIMEOUT_MS = 4000

async function until(page: Page, check: (state: PageState) => boolean, what: string, timeoutMs = 15_000): Promise<PageState> {
  const started = Date.now()
  for (;;) {
    const state = await pageState(page)
    if (check(state)) return state
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}: ${JSON.stringify({ ...state, messages: state.messages.length })}`)
    await sleep(50)
  }
}

const cases: Array<{ mode: NginxMode; settlesOn: string }> = [
  { mode: 'websocket', settlesOn: 'websocket' },
  { mode: 'plain', settlesOn: 'sse' },
  // nginx's buffers fill with the server's 2 KiB SSE padding: the stream gets through.
  { mode: 'buffering', settlesOn: 'sse' },
  { mode: 'buffering-gzip', settlesOn: 'long-polling' },
  { mode: 'idle-cut', settlesOn: 'websocket' },
]

describeWithBinary('nginx', 'negotiation behind nginx in Chromium', () => {
  for (const { mode, settlesOn } of cases) {
    test(`first message early and every message once behind a ${mode} proxy, settling on ${settlesOn}`, async ({ page, server }) => {
      const nginx = await startNginx(Number(new URL(server.origin).port), mode)
      const publisher = publish(server)
      try {
        await page.goto(`${nginx.url}/?transport=auto`)
        const first = await until(page, (state) => state.firstMessage !== undefined, 'the first message')
        const { ms, transport } = first.firstMessage as NonNullable<PageState['firstMessage']>
        expect(ms).toBeLessThan(HANDSHAKE_TIMEOUT_MS + 2000) // page load included
        if (settlesOn === 'long-polling') {
          expect(transport).toBe('long-polling')
          expect(first.fallbacks.some((event) => event.from === 'sse')).toBe(false)
          await until(page, (state) => state.fallbacks.some((event) => event.from === 'sse'), 'the stream demoted')
        } else {
          expect(transport).toBe(settlesOn)
        }
        await sleep(1000)
        const published = await publisher.stop()
        const state = await until(page, (s) => s.messages.at(-1)?.data.n === published, 'the last message')
        expect(state.transports.at(-1)).toBe(settlesOn)
        const numbers = state.messages.map((message) => message.data.n)
        // From the first message the page got: once each, in order, none skipped.
        const from = numbers[0] as number
        expect(numbers).toEqual(Array.from({ length: published - from + 1 }, (_, i) => from + i))
        expect(state.states.filter((s) => s === 'reconnecting')).toEqual([])
        console.log(`chromium, ${mode}: first message ${ms} ms after the page started, over ${transport}; fallbacks ${JSON.stringify(state.fallbacks)}`)
      } finally {
        await publisher.stop()
        await nginx.stop()
      }
    }, 40_000)
  }
})

/** Publishes `{ n: 1, 2, … }` on `e2e` every 20 ms until stopped; `stop` resolves with the count. */
function publish(server: E2EServer) {
  let count = 0
  let stopped = false
  const done = (async () => {
    while (!stopped && count < 5000) {
      await server.push.publish('e2e', { n: ++count })
      await sleep(20)
    }
  })()
  return {
    async stop() {
      stopped = true
      await done
      return count
    },
  }
}
