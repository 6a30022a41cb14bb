/**
 * The real demo (demo-server/server.js, as `npm run demo` runs it) in Chromium, driven through its
 * page and checked through each card's transport inspector (`demo.inspectors` on the page): every
 * scenario on its classic transport doing what it shows, every transport of the pickers, every
 * hostile network of the switch (with every message once and in order), and the 390 px phone
 * layout. Screenshots go to e2e/artifacts/demo-*.png (kept by CI); the README's screenshot,
 * docs/demo.png, is written by this run too.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { BrowserContext, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect } from 'vitest'
import { artifactsDir, launchChromium, requireBuild, root, test } from './harness.js'

interface Demo {
  readonly origin: string
  /** stdout and stderr so far, for failure messages. */
  output(): string
  /** SIGTERM by pid; resolves with the exit code (the demo shuts down cleanly on SIGTERM). */
  stop(): Promise<number | null>
}

/** Starts the demo on a free port (PORT=0); resolves with the origin it prints. */
async function startDemo(): Promise<Demo> {
  const child: ChildProcess = spawn(process.execPath, [join(root, 'demo-server/server.js')], {
    cwd: root,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()))
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
  const started = Date.now()
  let match: RegExpExecArray | null = null
  while (!(match = /pushline demo: (http:\/\/127\.0\.0\.1:\d+)\//.exec(output))) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the demo exited early:\n${output}`)
    if (Date.now() - started > 20_000) {
      child.kill('SIGKILL')
      throw new Error(`the demo did not start in 20 s:\n${output}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  const pid = child.pid as number
  return {
    origin: match[1] as string,
    output: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
      process.kill(pid, 'SIGTERM')
      const timer = setTimeout(() => process.kill(pid, 'SIGKILL'), 5000)
      const [code] = await exited
      clearTimeout(timer)
      return code
    },
  }
}

/** What a card's inspector shows (demo-server/public/inspector.js `summary()`). */
interface InspectorSummary {
  state: string
  transport: string | null
  remembered: string | null
  messages: number
  duplicates: number
  outOfOrder: number
  missing: number
  reconnects: number
  fallbacks: string[]
  gaps: number
  attempts: string[]
}

const CLASSIC = {
  negotiation: 'websocket',
  'unread-badge': 'short-polling',
  'config-center': 'long-polling',
  orders: 'sse',
  chat: 'websocket',
  'smart-home': 'websocket',
  counter: 'iframe',
} as const
type CardId = keyof typeof CLASSIC
const CARDS = Object.keys(CLASSIC) as CardId[]

const summary = (page: Page, id: CardId) =>
  page.evaluate((card) => (window as unknown as { demo: { inspectors: Map<string, { summary(): unknown }> } }).demo.inspectors.get(card)?.summary(), id) as Promise<InspectorSummary>
const text = (page: Page, selector: string) => page.locator(selector).first().textContent({ timeout: 1000 }).catch(() => null)

/** Saves a screenshot of the page (or of one card) to e2e/artifacts/<name>.png. */
async function keep(page: Page, name: string, card?: CardId): Promise<void> {
  await mkdir(artifactsDir, { recursive: true })
  const path = join(artifactsDir, `${name}.png`)
  if (card) await page.locator(`#${card}`).screenshot({ path })
  else await page.screenshot({ path, fullPage: true })
}

let demo: Demo | undefined
beforeAll(async () => {
  requireBuild()
  demo = await startDemo()
})
afterAll(async () => {
  await demo?.stop()
})

/** Opens the demo in a new tab; `errors` collects uncaught exceptions. */
async function openDemo(chromium: BrowserContext, errors: string[], viewport = { width: 1200, height: 900 }): Promise<Page> {
  if (!demo) throw new Error('the demo is not running')
  const page = await chromium.newPage()
  await page.setViewportSize(viewport)
  page.on('pageerror', (error) => errors.push(error.message))
  await page.goto(`${demo.origin}/`)
  for (const id of CARDS) {
    await expect.poll(async () => (await summary(page, id))?.state, { timeout: 20_000, message: `${id} opens` }).toBe('open')
  }
  return page
}

describe('demo-server/server.js', () => {
  test('each scenario works on its classic transport', async ({ chromium }) => {
    const errors: string[] = []
    const page = await openDemo(chromium, errors)
    // The second user in a browser of its own: each demo tab holds three HTTP/1.1 connections (SSE,
    // the long poll, the iframe stream), and a browser has six per host (demo-server/README.md).
    const otherBrowser = await launchChromium()
    const other = await openDemo(otherBrowser.context, errors)
    try {
      for (const id of CARDS) expect((await summary(page, id)).transport, id).toBe(CLASSIC[id])

      // 1. Unread badge: previews arrive by polling; "mark all read" reaches the badge through the channel.
      await expect.poll(() => page.locator('#unread-badge .previews li').count(), { timeout: 20_000 }).toBeGreaterThan(0)
      await expect.poll(() => text(page, '#unread-badge .poll-info'), { timeout: 5000 }).toMatch(/last answer .* next poll in ≤ 3 s/)
      await keep(page, 'demo-scenario-unread-badge', 'unread-badge')
      // The count goes back to 0 through the channel (a new notice may follow it at any moment).
      const cleared = page.evaluate(
        () =>
          new Promise<boolean>((resolve) => {
            const client = (window as unknown as { demo: { cards: Map<string, { client: { subscribe(c: string, f: (m: { data: { unread: number } }) => void): unknown } }> } }).demo.cards.get('unread-badge')!.client
            client.subscribe('notifications', (message) => message.data.unread === 0 && resolve(true))
            setTimeout(() => resolve(false), 15_000)
          }),
      )
      await page.click('#unread-badge .mark-read')
      expect(await cleared).toBe(true)

      // 2. Config center: the current config at once, and an edit in one tab watched in the other.
      await expect.poll(() => text(other, '#config-center .config-value'), { timeout: 10_000 }).toContain('rateLimitPerMinute')
      const limit = 1000 + Math.floor(Math.random() * 9000)
      await page.fill('#config-center [name=rateLimitPerMinute]', String(limit))
      await page.click('#config-center button[type=submit]')
      await expect.poll(() => text(page, '#config-center .result'), { timeout: 10_000 }).toMatch(/^stored at /)
      await expect.poll(() => text(other, '#config-center .config-value'), { timeout: 15_000 }).toContain(`"rateLimitPerMinute": ${limit}`)
      await keep(other, 'demo-scenario-config-center', 'config-center')

      // 3. Orders: rows, and presence counts both tabs.
      await expect.poll(() => page.locator('#orders tbody.orders tr:not(.empty)').count(), { timeout: 10_000 }).toBeGreaterThan(0)
      await expect.poll(async () => Number(await text(page, '#orders .viewers')), { timeout: 10_000 }).toBeGreaterThanOrEqual(2)
      await keep(page, 'demo-scenario-orders', 'orders')

      // 4. Chat: alice and bob in #general, presence, typing, a room message and a private one.
      await page.selectOption('#chat .user', 'alice')
      await other.selectOption('#chat .user', 'bob')
      await expect.poll(() => text(page, '#chat .members'), { timeout: 15_000 }).toMatch(/alice.*bob|bob.*alice/)
      await other.fill('#chat .text', 'hi')
      await other.locator('#chat .text').dispatchEvent('input')
      await expect.poll(() => text(page, '#chat .typing'), { timeout: 10_000 }).toBe('bob is typing…')
      await page.fill('#chat .text', 'hello room')
      await page.click('#chat button[type=submit]')
      await expect.poll(() => text(other, '#chat .messages li:last-child'), { timeout: 10_000 }).toContain('hello room')
      await page.selectOption('#chat .to', 'bob')
      await page.fill('#chat .text', 'just for bob')
      await page.click('#chat button[type=submit]')
      await expect.poll(() => text(other, '#chat .messages li.private'), { timeout: 10_000 }).toContain('just for bob')
      await expect.poll(() => text(page, '#chat .heartbeat'), { timeout: 15_000 }).toMatch(/heartbeat every 10 s .* liveness deadline in \d+ s/)
      await keep(other, 'demo-scenario-chat', 'chat')
      // Per-channel authorization: carol may not read alice and bob's DMs, even by asking directly.
      await other.selectOption('#chat .user', 'carol')
      await expect.poll(() => text(other, '#chat .result'), { timeout: 10_000 }).toBe('Signed in as carol.')
      await expect.poll(async () => (await summary(other, 'chat')).state, { timeout: 10_000 }).toBe('open')
      const refusal = await other.evaluate(
        () =>
          new Promise<string>((resolve) => {
            const client = (window as unknown as { demo: { cards: Map<string, { client: { subscribe(c: string): { on(e: string, f: (e: { code: string }) => void): void } } }> } }).demo.cards.get('chat')!.client
            client.subscribe('dm:alice:bob').on('error', (error) => resolve(error.code))
            setTimeout(() => resolve('no answer in 10 s'), 10_000)
          }),
      )
      expect(refusal).toBe('SUBSCRIBE_REJECTED')

      // 5. Smart home: readings through the MQTT bridge, and the light switch round trip.
      await expect.poll(() => text(page, '#smart-home .temperature'), { timeout: 10_000 }).toMatch(/°C/)
      const before = await text(page, '#smart-home .light')
      await page.click('#smart-home .switch')
      await expect.poll(() => text(page, '#smart-home .light'), { timeout: 10_000 }).toBe(before === 'on' ? 'off' : 'on')
      await keep(page, 'demo-scenario-smart-home', 'smart-home')

      // 6. Counter: it counts, and the frames the iframe delivered are listed.
      const count = Number(await text(page, '#counter .count'))
      await expect.poll(async () => Number(await text(page, '#counter .count')), { timeout: 10_000 }).toBeGreaterThan(count)
      expect(await text(page, '#counter .frames li')).toContain('"channel":"counter"')
      await keep(page, 'demo-scenario-counter', 'counter')

      for (const id of CARDS) {
        const { duplicates, outOfOrder } = await summary(page, id)
        expect({ id, duplicates, outOfOrder }).toEqual({ id, duplicates: 0, outOfOrder: 0 })
      }
      // The README's screenshot: the top of the page, as a new user first sees it.
      await page.evaluate(() => window.scrollTo(0, 0))
      await page.screenshot({ path: join(root, 'docs/demo.png') })
      expect(errors).toEqual([])
    } finally {
      await page.close()
      await otherBrowser.close()
    }
  })

  test('every card works on every transport of its picker', async ({ chromium }) => {
    const errors: string[] = []
    const page = await openDemo(chromium, errors)
    try {
      // The counter publishes every second: a fast check that a transport delivers.
      for (const transport of ['websocket', 'sse', 'long-polling', 'short-polling', 'iframe']) {
        await page.selectOption('#counter .picker', transport === 'iframe' ? 'classic' : transport)
        await expect.poll(async () => (await summary(page, 'counter')).transport, { timeout: 15_000 }).toBe(transport)
        await expect.poll(async () => (await summary(page, 'counter')).messages, { timeout: 10_000, message: `a message over ${transport}` }).toBeGreaterThan(1)
        await keep(page, `demo-transport-${transport}`, 'counter')
      }
      expect(errors).toEqual([])
    } finally {
      await page.close()
    }
  })

  // What each hostile network must make the negotiating card do; every card must still get every
  // message once, in order.
  const NETWORKS = [
    { id: 'no-upgrade', transport: 'sse', fallback: 'websocket→sse:handshake-failed' },
    { id: 'buffering', transport: 'long-polling', fallback: 'sse→long-polling:handshake-timeout' },
    { id: 'idle-cut', transport: undefined, fallback: undefined },
    { id: 'flaky', transport: undefined, fallback: undefined },
  ] as const
  for (const network of NETWORKS) {
    test(`network switch: ${network.id}`, async ({ chromium }) => {
      const errors: string[] = []
      const page = await openDemo(chromium, errors)
      try {
        await page.selectOption('#network', network.id)
        await expect.poll(async () => (await summary(page, 'negotiation')).state, { timeout: 20_000 }).toBe('open')
        if (network.transport) {
          await expect.poll(async () => (await summary(page, 'negotiation')).transport, { timeout: 20_000 }).toBe(network.transport)
          // A move is announced once another transport reached the server (and a raced attempt's at its deadline).
          await expect.poll(async () => (await summary(page, 'negotiation')).fallbacks, { timeout: 15_000 }).toContain(network.fallback)
        } else {
          // Cut connections: some card reconnects (the chat's quiet WebSocket at least on idle-cut).
          await expect
            .poll(async () => Math.max(...(await Promise.all(CARDS.map(async (id) => (await summary(page, id)).reconnects)))), { timeout: 30_000 })
            .toBeGreaterThan(0)
        }
        // Three bursts of ticks through the bad network.
        const start = (await summary(page, 'negotiation')).messages
        await expect.poll(async () => (await summary(page, 'negotiation')).messages, { timeout: 30_000 }).toBeGreaterThanOrEqual(start + 12)
        for (const id of CARDS) {
          const { duplicates, outOfOrder } = await summary(page, id)
          expect({ id, duplicates, outOfOrder }).toEqual({ id, duplicates: 0, outOfOrder: 0 })
        }
        expect(await page.locator('#negotiation .verdict').textContent()).toBe('✓ each once, in order')
        await page.evaluate(() => document.querySelectorAll('details').forEach((details) => (details.open = true)))
        await keep(page, `demo-network-${network.id}`)
        // The switch back: the remembered winner for this origin's URL, at once.
        await page.selectOption('#network', 'direct')
        await expect.poll(async () => (await summary(page, 'negotiation')).transport, { timeout: 20_000 }).toBe('websocket')
        expect((await summary(page, 'negotiation')).attempts[0]).toBe('websocket:hello')
        expect(errors).toEqual([])
      } finally {
        await page.close()
      }
    })
  }

  test('fits a 390 px phone screen, events wrapped rather than cut off', async ({ chromium }) => {
    const errors: string[] = []
    const page = await openDemo(chromium, errors, { width: 390, height: 844 })
    try {
      await page.evaluate(() => document.querySelectorAll('details').forEach((details) => (details.open = true)))
      await expect.poll(() => page.locator('#negotiation .timeline li').count(), { timeout: 10_000 }).toBeGreaterThan(2)
      const overflow = await page.evaluate(() => ({
        page: document.documentElement.scrollWidth - window.innerWidth,
        // Every event line shows all of its text: nothing wider than its box.
        cutLines: [...document.querySelectorAll('.timeline li, .lines li, .attempts td')].filter((element) => element.scrollWidth > element.clientWidth + 1).length,
      }))
      expect(overflow).toEqual({ page: 0, cutLines: 0 })
      await keep(page, 'demo-phone-390')
      expect(errors).toEqual([])
    } finally {
      await page.close()
    }
    const code = await demo?.stop()
    expect(code, demo?.output()).toBe(0)
  })
})
