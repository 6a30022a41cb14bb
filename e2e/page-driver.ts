/**
 * A ClientDriver (test/conformance/driver.ts) whose client runs in a Chromium tab: the script-tag
 * bundle (dist/pushline.iife.min.js) and e2e/page/driver.js. Every call is one `page.evaluate`.
 *
 * The conformance suite points clients at servers on ports it chooses (through its TCP proxy), so
 * the driver page is served by Playwright from that server's own origin (`page.route`): the client
 * then talks to its server same-origin, as a site does, and the server needs no CORS.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { BrowserContext, Page } from 'playwright-core'
import type {
  ClientDriver,
  ClientLog,
  ClientOptions,
  PublishOutcome,
  ReceivedGap,
  ReceivedMessage,
  SubscribeOutcome,
} from '../test/conformance/driver.js'
import { root } from './harness.js'

const PREFIX = '/__pushline_e2e__/'
const FILES: Record<string, { file: string; type: string }> = {
  'driver.html': { file: 'e2e/page/driver.html', type: 'text/html; charset=utf-8' },
  'driver.js': { file: 'e2e/page/driver.js', type: 'text/javascript; charset=utf-8' },
  'pushline.iife.min.js': { file: 'dist/pushline.iife.min.js', type: 'text/javascript; charset=utf-8' },
  'pushline.iife.min.js.map': { file: 'dist/pushline.iife.min.js.map', type: 'application/json; charset=utf-8' },
}

/** Makes drivers whose pages open in the context that `context()` returns when `create()` runs. */
export function pageDriver(context: () => BrowserContext): ClientDriver {
  let page: Page | undefined
  /** Uncaught exceptions in the page: a client that throws out of a callback fails the suite. */
  const uncaught: string[] = []

  const call = async <T>(method: keyof ClientDriver, ...args: unknown[]): Promise<T> => {
    if (!page) throw new Error('driver: create() first')
    if (uncaught.length > 0) throw new Error(`the page threw: ${uncaught.join('; ')}`)
    const argList = args.map((arg) => (arg === undefined ? 'undefined' : JSON.stringify(arg))).join(', ')
    return page.evaluate<T>(`window.driver.${method}(${argList})`)
  }

  return {
    async create(options: ClientOptions) {
      const origin = new URL(options.url).origin
      page = await context().newPage()
      page.on('pageerror', (error) => uncaught.push(error.message))
      await page.route(`${origin}${PREFIX}**`, async (route) => {
        const name = new URL(route.request().url()).pathname.slice(PREFIX.length)
        const entry = FILES[name]
        if (!entry) return route.fulfill({ status: 404, body: 'not found' })
        return route.fulfill({ status: 200, contentType: entry.type, body: await readFile(join(root, entry.file)) })
      })
      await page.goto(`${origin}${PREFIX}driver.html`)
      await call('create', options)
    },
    connect: () => call('connect'),
    subscribe: (channel, options) => call<SubscribeOutcome>('subscribe', channel, options),
    unsubscribe: (channel) => call('unsubscribe', channel),
    publish: (channel, data, options) => call<PublishOutcome>('publish', channel, data, options),
    state: () => call<string>('state'),
    transport: () => call<string | undefined>('transport'),
    messages: (channel) => call<ReceivedMessage[]>('messages', channel),
    gaps: (channel) => call<ReceivedGap[]>('gaps', channel),
    log: () => call<ClientLog>('log'),
    async close() {
      if (!page) return
      await call('close').catch(() => undefined)
      await page.close()
      page = undefined
    },
  }
}
