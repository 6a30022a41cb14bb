import { createServer } from 'node:http'
import type { IncomingMessage, RequestListener, Server } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { WebSocket } from 'ws'
import type { ServerFrame } from '../../src/protocol/frames.js'
import { createPushServer } from '../../src/server/index.js'
import type { PushServer, PushServerOptions } from '../../src/server/index.js'

/** A node:http server on port 0 with a push server attached under /push. */
export interface TestServer {
  http: Server
  push: PushServer
  /** `http://127.0.0.1:<port>` */
  origin: string
  /** `http://127.0.0.1:<port>/push` */
  base: string
  /** `ws://127.0.0.1:<port>/push/ws` */
  wsUrl: string
  /** Every socket the server accepted, to cut them from the server side. */
  sockets: Set<Socket>
  close(): Promise<void>
}

const running = new Set<TestServer>()

export async function startServer(options: PushServerOptions = {}, app?: RequestListener): Promise<TestServer> {
  const http = app ? createServer(app) : createServer()
  const push = createPushServer(options)
  push.attach(http, { path: '/push' })
  const sockets = new Set<Socket>()
  http.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
  const { port } = http.address() as AddressInfo
  const origin = `http://127.0.0.1:${port}`
  const server: TestServer = {
    http,
    push,
    origin,
    base: `${origin}/push`,
    wsUrl: `ws://127.0.0.1:${port}/push/ws`,
    sockets,
    async close() {
      running.delete(server)
      await push.close()
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => http.close(() => resolve()))
    },
  }
  running.add(server)
  return server
}

/** Closes every server and client the test left open (call from afterEach). */
export async function cleanup(): Promise<void> {
  for (const client of openClients) client.ws.terminate()
  openClients.clear()
  await Promise.all([...running].map((s) => s.close()))
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
    await delay(ms)
    const unread = this.frames.slice(this.#read).filter((f) => f.type !== 'ping')
    this.#read = this.frames.length
    return unread
  }

  close(): Promise<{ code: number; reason: string }> {
    this.ws.close()
    return this.closed
  }
}

/** Opens a client and reads its hello. */
export async function connect(server: TestServer, protocols?: string[]): Promise<FrameClient> {
  const client = await FrameClient.open(server.wsUrl, protocols)
  const hello = await client.next()
  if (hello.type !== 'hello') throw new Error(`expected hello, got ${JSON.stringify(hello)}`)
  return client
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Polls `check` until it returns true. */
export async function eventually(check: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await delay(10)
  }
}
