/**
 * One connection for all tabs in real Chromium: 8 tabs of one origin on SSE over HTTP/1.1 (where a
 * browser allows 6 connections per host, so 8 unshared streams could not all open) share one
 * connection; then the leader tab closes mid-stream while the server publishes without pause, and
 * another tab takes over. Every remaining tab must have every message exactly once, in order.
 * Twice: `share: tabShare()` from the ES modules, and `share: true` from the script-tag bundle.
 */
import { build } from 'esbuild'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import { describe, expect } from 'vitest'
import { root, test } from './harness.js'

const TABS = 8
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
const messagesOf = (page: Page) => page.evaluate<number[]>('window.e2e.messages')
const gapsOf = (page: Page) => page.evaluate<unknown[]>('window.e2e.gaps')

/** The script-tag page: `share: true`, which loads pushline/share on demand (inlined in the bundle). */
const SCRIPT_TAG_PAGE = `<!doctype html><title>share</title><script src="/pushline.iife.min.js"></script><script>
const e2e = { messages: [], gaps: [], transports: [], states: [] }
window.e2e = e2e
const client = new Pushline.PushClient({ url: new URL('/push', location.href).href, transports: ['sse'], share: true })
client.on('transport', (name) => e2e.transports.push(name))
client.on('state', (state) => e2e.states.push(state))
const subscription = client.subscribe('e2e', (message) => e2e.messages.push(message.data.n))
subscription.on('gap', (gap) => e2e.gaps.push(gap))
client.connect()
</script>`

describe('one connection for all tabs', () => {
  test.for([
    ['share: tabShare() (ES modules)', 'module'],
    ['share: true (script tag)', 'script'],
  ] as const)('8 SSE tabs share one connection; the leader closes mid-stream: %s', { timeout: 60_000 }, async ([, kind], { chromium, server, page }) => {
    if (kind === 'module') {
      const bundle = await build({ entryPoints: [join(root, 'e2e/page/share/app.js')], bundle: true, format: 'esm', write: false, platform: 'browser' })
      server.serve('/share/app.js', bundle.outputFiles[0]!.text, 'text/javascript; charset=utf-8')
      server.serve('/share/', '<!doctype html><title>share</title><script type="module" src="/share/app.js"></script>', 'text/html; charset=utf-8')
    } else {
      server.serve('/share/', SCRIPT_TAG_PAGE, 'text/html; charset=utf-8')
    }
    const pages = [page]
    for (let i = 1; i < TABS; i++) pages.push(await chromium.newPage())
    for (const each of pages) await each.goto(`${server.origin}/share/`)
    await expect.poll(async () => (await Promise.all(pages.map((each) => each.evaluate<string[]>('window.e2e.transports')))).every((t) => t.includes('sse')), { timeout: 15_000 }).toBe(true)
    await expect.poll(() => server.push.stats().connections, { timeout: 10_000 }).toBe(1)

    let count = 0
    const publishUpTo = async (n: number) => {
      while (count < n) {
        await server.push.publish('e2e', { n: ++count })
        await sleep(20)
      }
    }
    await publishUpTo(20)
    await expect.poll(async () => Promise.all(pages.map(messagesOf)), { timeout: 10_000 }).toEqual(pages.map(() => range(1, 20)))
    expect(server.push.stats().connections).toBe(1)

    // The leader is the first tab (it asked for the lock first). Close it while publishing.
    const publishing = publishUpTo(80)
    await sleep(300)
    await pages[0]!.close()
    await publishing
    const rest = pages.slice(1)
    await expect.poll(async () => Promise.all(rest.map(messagesOf)), { timeout: 20_000 }).toEqual(rest.map(() => range(1, 80)))
    for (const each of rest) expect(await gapsOf(each)).toEqual([])
    await expect.poll(() => server.push.stats().connections, { timeout: 10_000 }).toBe(1)
    for (const each of rest) await each.close()
  })
})
