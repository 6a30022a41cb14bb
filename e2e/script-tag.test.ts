/**
 * The CDN bundle in real Chromium: a page that loads dist/pushline.iife.min.js with a script tag
 * (e2e/page/) connects to the built server over each transport, receives what the server
 * publishes in order, and publishes back.
 */
import type { Page } from 'playwright-core'
import { describe, expect } from 'vitest'
import { screenshot, test } from './harness.js'

/** What e2e/page/app.js keeps in `window.e2e`. */
interface PageState {
  states: string[]
  transports: string[]
  errors: string[]
  messages: { event: string; data: unknown; offset: number; id: string }[]
  echoes: { event: string; data: unknown; offset: number; id: string }[]
  subscribed: string[]
}

type PublishOutcome = { ok: true; channel: string; offset: number; id: string } | { ok: false; code: string; message: string }

const COUNT = 25
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)
const pageState = (page: Page) => page.evaluate<PageState>('window.e2e')

describe('script-tag bundle (global Pushline)', () => {
  for (const transport of ['websocket', 'sse', 'long-polling', 'short-polling', 'iframe'] as const) {
    test(`over ${transport}: receives in order and publishes back`, async ({ page, server, pageErrors }) => {
      await page.goto(`${server.origin}/?transport=${transport}`)
      // The global carries the public client surface (src/cdn.ts).
      const globals = await page.evaluate<Record<string, string>>(
        'Object.fromEntries(Object.entries(Pushline).map(([name, value]) => [name, typeof value]))',
      )
      expect(globals).toMatchObject({
        PushClient: 'function',
        PushError: 'function',
        websocket: 'function',
        sse: 'function',
        longPolling: 'function',
        shortPolling: 'function',
        iframe: 'function',
      })

      await expect.poll(async () => (await pageState(page)).states.at(-1), { timeout: 10_000 }).toBe('open')
      // Both subscriptions (`e2e`, `e2e-back`) are live before anything is published: confirmed
      // to the client, and held by the server, except for short polls, which leave nothing there
      // between polls (each poll carries the positions the first one's `subscribed` frames gave).
      await expect
        .poll(async () => [...(await pageState(page)).subscribed].sort(), { timeout: 10_000 })
        .toEqual(['e2e', 'e2e-back'])
      if (transport !== 'short-polling') {
        await expect.poll(() => server.push.stats().subscriptions, { timeout: 10_000 }).toBe(2)
      }
      expect((await pageState(page)).transports).toEqual([transport])

      for (const n of range(1, COUNT)) await server.push.publish('e2e', { n })
      await expect.poll(async () => (await pageState(page)).messages.length, { timeout: 10_000 }).toBe(COUNT)
      const { messages } = await pageState(page)
      expect(messages.map((m) => (m.data as { n: number }).n)).toEqual(range(1, COUNT))
      expect(messages.map((m) => m.offset)).toEqual(range(1, COUNT))
      const epoch = messages[0]?.id.split('-')[0]
      expect(messages.every((m) => m.id === `${epoch}-${m.offset}` && m.event === 'message')).toBe(true)

      const outcome = await page.evaluate<PublishOutcome>(`window.e2ePublish({ from: 'browser', transport: '${transport}' })`)
      expect(outcome).toMatchObject({ ok: true, channel: 'e2e-back', offset: 1 })
      // The server's publish policy saw it once (whether it also sees server-side publishes is not our concern).
      expect(server.published.filter((request) => request.channel === 'e2e-back')).toHaveLength(1)
      // The server fanned the browser's publish out, back to the browser.
      await expect.poll(async () => (await pageState(page)).echoes.length, { timeout: 10_000 }).toBe(1)
      expect((await pageState(page)).echoes[0]).toMatchObject({ data: { from: 'browser', transport }, offset: 1 })

      await screenshot(page, `script-tag-${transport}`)
      const final = await pageState(page)
      expect(final.errors).toEqual([])
      expect(final.transports).toEqual([transport])
      expect(pageErrors).toEqual([])
    })
  }
})
