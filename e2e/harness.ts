/**
 * The e2e fixture. `server`: a node:http server on a free loopback port serving the test page
 * (e2e/page/), the script-tag bundle from dist/, pages a test adds (`serve`), and a pushline server
 * from dist/server.js attached at /push, all on one origin. `chromium`: Debian's Chromium driven by
 * playwright-core (no browser download) with a fresh profile per test file. `page`: a tab that
 * records the page's errors.
 * Everything is closed and removed after use, also when a test fails.
 */
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { extname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { chromium as playwrightChromium, type BrowserContext, type Page } from 'playwright-core'
import { test as base } from 'vitest'
import type { createPushServer } from '../src/server/index.js'
import { requireBinary } from '../test/helpers/system-binary.js'

type CreatePushServer = typeof createPushServer
export type PushServer = ReturnType<CreatePushServer>
export type PushServerOptions = NonNullable<Parameters<CreatePushServer>[0]>
type PublishRequest = Parameters<NonNullable<PushServerOptions['onPublish']>>[0]

export const root = fileURLToPath(new URL('..', import.meta.url))
export const artifactsDir = join(root, 'e2e', 'artifacts')

const CHROMIUM_ARGS = [
  '--no-sandbox', // CI runs as root
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

/** URL path → file, relative to the repo. */
const STATIC_FILES: Record<string, string> = {
  '/': 'e2e/page/index.html',
  '/app.js': 'e2e/page/app.js',
  '/pushline.iife.min.js': 'dist/pushline.iife.min.js',
  '/pushline.iife.min.js.map': 'dist/pushline.iife.min.js.map',
}
const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
}
const PUSH_PATH = '/push'

export interface E2EServer {
  /** Origin of the page and of the pushline server, e.g. `http://127.0.0.1:40123`. */
  readonly origin: string
  /** Base URL of the pushline server (`${origin}/push`). */
  readonly pushUrl: string
  readonly push: PushServer
  /** Every publish the server was asked for by a client, as its `onPublish` hook saw it. */
  readonly published: PublishRequest[]
  /** Serves `body` at `path` (GET) from now on, besides the fixed files of e2e/page/. */
  serve(path: string, body: string | Uint8Array, contentType: string): void
  /**
   * Destroys every TCP connection the server has (page loads, WebSockets, streams, polls), as a
   * network outage or a crashed middlebox does; the server itself keeps running.
   */
  dropConnections(): number
  close(): Promise<void>
}

/** Fails with a clear message when `npm run build` has not run. */
export function requireBuild(): void {
  const needed = ['dist/server.js', ...Object.values(STATIC_FILES).filter((file) => file.startsWith('dist/'))]
  const missing = needed.filter((file) => !existsSync(join(root, file)))
  if (missing.length > 0) throw new Error(`e2e needs the build: ${missing.join(', ')} missing; run \`npm run build\`.`)
}

interface ServedBody {
  body: string | Uint8Array
  contentType: string
}

/** The app's request handler; `push.attach` calls it for every request that is not below /push. */
async function serveStatic(req: IncomingMessage, res: ServerResponse, extra: Map<string, ServedBody>): Promise<void> {
  const { pathname } = new URL(req.url ?? '/', 'http://localhost')
  const served = req.method === 'GET' ? extra.get(pathname) : undefined
  if (served) {
    res.writeHead(200, { 'Content-Type': served.contentType, 'Cache-Control': 'no-store' }).end(served.body)
    return
  }
  const file = STATIC_FILES[pathname]
  if (req.method !== 'GET' || file === undefined) {
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found')
    return
  }
  const body = await readFile(join(root, file))
  res
    .writeHead(200, { 'Content-Type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream', 'Cache-Control': 'no-store' })
    .end(body)
}

/** Starts the page server with the built pushline server (dist/server.js) at /push. */
export async function startE2EServer(options: PushServerOptions = {}): Promise<E2EServer> {
  requireBuild()
  const { createPushServer } = (await import(pathToFileURL(join(root, 'dist/server.js')).href)) as {
    createPushServer: CreatePushServer
  }
  const published: PublishRequest[] = []
  const push = createPushServer({
    heartbeatMs: 1000,
    ...options,
    onPublish: (request) => {
      published.push(request)
      return options.onPublish?.(request)
    },
  })
  const extra = new Map<string, ServedBody>()
  const httpServer = createServer((req, res) => {
    serveStatic(req, res, extra).catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' })
      res.end(String(error))
    })
  })
  // Upgraded WebSockets leave the http server's bookkeeping, so keep every socket here.
  const sockets = new Set<Socket>()
  httpServer.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  // As an app does: the server's own handler first, then attach (which wraps it).
  push.attach(httpServer, { path: PUSH_PATH })
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve))
  const { port } = httpServer.address() as AddressInfo
  const origin = `http://127.0.0.1:${port}`
  return {
    origin,
    pushUrl: `${origin}${PUSH_PATH}`,
    push,
    published,
    serve(path, body, contentType) {
      extra.set(path, { body, contentType })
    },
    dropConnections() {
      const count = sockets.size
      for (const socket of sockets) socket.destroy()
      return count
    },
    async close() {
      try {
        await push.close()
      } finally {
        httpServer.closeAllConnections()
        await new Promise<void>((resolve) => httpServer.close(() => resolve()))
      }
    },
  }
}

/** Publishes `{ n: 1, 2, … }` on `channel` every `everyMs` until stopped; `stop()` resolves with the count. */
export function startPublisher(server: E2EServer, channel: string, everyMs = 20) {
  let count = 0
  let stopped = false
  const done = (async () => {
    while (!stopped) {
      await server.push.publish(channel, { n: ++count })
      await new Promise<void>((resolve) => setTimeout(resolve, everyMs))
    }
  })()
  return {
    get count() {
      return count
    },
    async stop() {
      stopped = true
      await done
      return count
    },
  }
}

export interface LaunchedChromium {
  readonly context: BrowserContext
  close(): Promise<void>
}

/**
 * Launches headless Chromium with a fresh profile directory that `close()` removes. `args` are
 * added to the fixed flags; `ignoreDefaultArgs` drops switches playwright-core adds by default
 * (such as `--disable-back-forward-cache`).
 */
export async function launchChromium({
  args = [],
  ignoreDefaultArgs = [],
}: { args?: string[]; ignoreDefaultArgs?: string[] } = {}): Promise<LaunchedChromium> {
  // Debian's package, or PUSHLINE_CHROMIUM. Without it e2e/vitest.config.ts skips every test, so
  // this throws only under CI=true (or for a test run by name): with the install command.
  const executablePath = requireBinary('chromium')
  const profile = await mkdtemp(join(tmpdir(), 'pushline-e2e-profile-'))
  const removeProfile = () => rm(profile, { recursive: true, force: true, maxRetries: 3 })
  let context: BrowserContext
  try {
    context = await playwrightChromium.launchPersistentContext(profile, {
      executablePath,
      headless: true,
      args: [...CHROMIUM_ARGS, ...args],
      ignoreDefaultArgs,
      viewport: { width: 900, height: 700 },
    })
  } catch (error) {
    await removeProfile()
    throw error
  }
  return {
    context,
    async close() {
      try {
        await context.close()
      } finally {
        await removeProfile()
      }
    },
  }
}

/** Saves a full-page screenshot to e2e/artifacts/<name>.png and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  await mkdir(artifactsDir, { recursive: true })
  const path = join(artifactsDir, `${name.replace(/[^\w.-]+/g, '-')}.png`)
  await page.screenshot({ path, fullPage: true })
  return path
}

/**
 * `test` with the e2e fixtures. Teardown runs in reverse: page, then server, then (after the
 * file's last test) Chromium and its profile.
 */
export const test = base
  .extend('chromium', { scope: 'file' }, async ({}, { onCleanup }) => {
    const launched = await launchChromium()
    onCleanup(() => launched.close())
    return launched.context
  })
  .extend('server', async ({}, { onCleanup }) => {
    const server = await startE2EServer()
    onCleanup(() => server.close())
    return server
  })
  /** Uncaught exceptions and console errors of the page, for tests to assert there are none. */
  .extend('pageErrors', async () => [] as string[])
  .extend('page', async ({ chromium, server, pageErrors, task }, { onCleanup }) => {
    void server // set up first, so that the page closes before the server does
    const page = await chromium.newPage()
    page.on('pageerror', (error) => pageErrors.push(`uncaught: ${error.message}`))
    page.on('console', (message) => {
      if (message.type() === 'error') pageErrors.push(`console.error: ${message.text()}`)
    })
    onCleanup(async () => {
      // What the page showed when the test failed (not for `test.fails`, whose failure is expected).
      if (task.result?.state === 'fail' && !task.fails) await screenshot(page, `failed-${task.name}`).catch(() => undefined)
      await page.close()
    })
    return page
  })
