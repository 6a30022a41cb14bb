import http from 'node:http'
import type { IncomingMessage, RequestListener } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { WebSocket } from 'ws'
import type { ServerFrame } from '../../src/protocol/frames.js'
import { createPushServer } from '../../src/server/index.js'
import type { PushServer, PushServerOptions } from '../../src/server/index.js'
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js'

// The one server fixture of the tests: a real pushline server on a free
// loopback port, with a TCP proxy in front for tests that break the network,
// and a raw WebSocket client that records frames for server tests.

export type { PushServer, PushServerOptions }

/** A pushline server attached under /push to a node:http server on 127.0.0.1, port 0. */
export interface PushFixture {
  /** Base URL clients use through the proxy: `http://127.0.0.1:<proxy port>/push`. */
  readonly url: string
  /** Base URL of the server itself, bypassing the proxy: `http://127.0.0.1:<port>/push`. */
  readonly directUrl: string
  /** The server's own origin: `http://127.0.0.1:<port>`. */
  readonly origin: string
  /** `ws://127.0.0.1:<port>/push/ws`, bypassing the proxy. */
  readonly wsUrl: string
  readonly push: PushServer
  readonly http: http.Server
  /** Every socket the server accepted and still has open, to cut them from the server side. */
  readonly sockets: ReadonlySet<Socket>
  readonly proxy: TcpProxy
  /** Replaces the server by a fresh one behind the same proxy (new process state: new epochs, empty history). */
  restart(options?: PushServerOptions): Promise<void>
  close(): Promise<void>
}

export interface PushFixtureSetup {
  /**
   * The app the push server is attached in front of (requests outside /push go to it).
   * @default none: other requests are answered 404
   */
  app?: RequestListener
}

interface Listening {
  http: http.Server
  push: PushServer
  port: number
  sockets: Set<Socket>
}

async function listen(options: PushServerOptions, app: RequestListener | undefined): Promise<Listening> {
  const server = app ? http.createServer(app) : http.createServer()
  const push = createPushServer(options)
  push.attach(server, { path: '/push' })
  const sockets = new Set<Socket>()
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return { http: server, push, port, sockets }
}

async function stop(current: Listening): Promise<void> {
  await current.push.close()
  // Upgraded (WebSocket) sockets are no longer the http server's to close.
  for (const socket of current.sockets) socket.destroy()
  current.http.closeAllConnections()
  await new Promise<void>((resolve) => current.http.close(() => resolve()))
}

const running = new Set<PushFixture>()

export async function startPushFixture(
  options: PushServerOptions = {},
  setup: PushFixtureSetup = {},
): Promise<PushFixture> {
  let current = await listen(options, setup.app)
  const proxy = await startTcpProxy(current.port)
  const origin = () => `http://127.0.0.1:${current.port}`
  const fixture: PushFixture = {
    url: `http://127.0.0.1:${proxy.port}/push`,
    get directUrl() {
      return `${origin()}/push`
    },
    get origin() {
      return origin()
    },
    get wsUrl() {
      return `ws://127.0.0.1:${current.port}/push/ws`
    },
    get push() {
      return current.push
    },
    get http() {
      return current.http
    },
    get sockets() {
      return current.sockets
    },
    proxy,
    async restart(next = options) {
      await stop(current)
      proxy.cutAll()
      current = await listen(next, setup.app)
      proxy.retarget(current.port)
    },
    async close() {
      if (!running.delete(fixture)) return
      await proxy.close()
      await stop(current)
    },
  }
  running.add(fixture)
  return fixture
}

/** Closes every fixture and frame client a test left open (`afterEach(cleanup)`). */
export async function cleanup(): Promise<void> {
  for (const client of openClients) client.ws.terminate()
  openClients.clear()
  await Promise.all([...running].map((fixture) => fixture.close()))
}

const openClients = new Set<FrameClient>()

/** A raw `ws` client that records every frame, split on LF as protocol.md 3.2 says. */
export class FrameClient {
  readonly ws: WebSocket
  /** Every WebSocket message as received. */
  readonly messages: string[] = []
  readonly frames: ServerFrame[] = []
  readonly closed: Promise<{ code: number; reason: string }>
  /** Answer pings with pongs (off to simulate a dead client). */
  autoPong = true
  #read = 0
  #waiters: (() => void)[] = []

  private constructor(ws: WebSocket) {
    this.ws = ws
    openClients.add(this)
    ws.on('message', (data) => {
      const text = String(data)
      this.messages.push(text)
      for (const line of text.split('\n')) {
        const frame = JSON.parse(line) as ServerFrame
        this.frames.push(frame)
        if (frame.type === 'ping' && this.autoPong) this.send({ type: 'pong' })
      }
      for (const wake of this.#waiters.splice(0)) wake()
    })
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        openClients.delete(this)
        resolve({ code, reason: String(reason) })
        for (const wake of this.#waiters.splice(0)) wake()
      })
    })
    ws.on('error', () => {})
  }

  static async open(url: string, protocols: string[] = ['pushline.v1']): Promise<FrameClient> {
    const ws = new WebSocket(url, protocols)
    const client = new FrameClient(ws)
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve())
      ws.once('error', reject)
      ws.once('unexpected-response', (_req, res: IncomingMessage) => reject(new Error(`HTTP ${res.statusCode}`)))
    })
    return client
  }

  send(frame: object | string): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame))
  }

  /** The next unread frame that is not a ping (or any frame with `pings`). */
  async next(timeoutMs = 2000, pings = false): Promise<ServerFrame> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      while (this.#read < this.frames.length) {
        const frame = this.frames[this.#read++]
        if (frame && (pings || frame.type !== 'ping')) return frame
      }
      if (this.ws.readyState === WebSocket.CLOSED) throw new Error('closed while waiting for a frame')
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`no frame within ${timeoutMs} ms; got ${JSON.stringify(this.frames)}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.#waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
  }

  /** Reads frames until one of `type` arrives and returns it. */
  async nextOf<T extends ServerFrame['type']>(type: T, timeoutMs = 2000): Promise<Extract<ServerFrame, { type: T }>> {
    for (;;) {
      const frame = await this.next(timeoutMs, type === 'ping')
      if (frame.type === type) return frame as Extract<ServerFrame, { type: T }>
    }
  }

  /** Asserts nothing (but pings) arrives for `ms`. */
  async idle(ms = 100): Promise<ServerFrame[]> {
    await sleep(ms)
    const unread = this.frames.slice(this.#read).filter((f) => f.type !== 'ping')
    this.#read = this.frames.length
    return unread
  }

  close(): Promise<{ code: number; reason: string }> {
    this.ws.close()
    return this.closed
  }
}

/** Opens a frame client on the fixture's server (not through the proxy) and reads its hello. */
export async function connect(fixture: PushFixture, protocols?: string[]): Promise<FrameClient> {
  const client = await FrameClient.open(fixture.wsUrl, protocols)
  const hello = await client.next()
  if (hello.type !== 'hello') throw new Error(`expected hello, got ${JSON.stringify(hello)}`)
  return client
}

/** Polls `check` until it returns true, failing after `timeoutMs` with `what`. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const started = Date.now()
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(10)
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
