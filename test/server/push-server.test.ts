import { createServer, request } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { WebSocket, WebSocketServer } from 'ws'
import { createPushServer } from '../../src/server/index.js'
import { FrameClient, cleanup, connect, startPushFixture } from '../helpers/push-fixture.js'

afterEach(cleanup)

describe('createPushServer', () => {
  it('passes requests outside <path>/ to the app installed before it', async () => {
    const seen: string[] = []
    // An Express or Fastify app is one request listener like this one.
    const server = await startPushFixture(
      {},
      {
        app: (req, res) => {
          seen.push(req.url ?? '')
          res.end('app')
        },
      },
    )
    for (const path of ['/', '/pushy', '/push', '/other/push/sse']) {
      expect(await (await fetch(`${server.origin}${path}`)).text()).toBe('app')
    }
    expect(seen).toEqual(['/', '/pushy', '/push', '/other/push/sse'])
    const ours = await fetch(`${server.directUrl}/unknown`)
    expect(ours.status).toBe(404)
    expect(seen).toHaveLength(4)
  })

  it('answers 404 to requests nobody handles instead of hanging', async () => {
    const server = await startPushFixture()
    expect((await fetch(`${server.origin}/elsewhere`)).status).toBe(404)
  })

  it('leaves WebSocket upgrades for other paths to other listeners', async () => {
    const server = await startPushFixture()
    const other = new WebSocketServer({ noServer: true })
    server.http.on('upgrade', (req, socket, head) => {
      if (req.url === '/chat') other.handleUpgrade(req, socket, head, (ws) => ws.send('chat here'))
    })
    const chat = new WebSocket(`${server.origin.replace('http', 'ws')}/chat`)
    const first = await new Promise<string>((resolve) => chat.once('message', (data) => resolve(String(data))))
    expect(first).toBe('chat here')
    chat.close()
    const push = await connect(server)
    expect(push.ws.readyState).toBe(WebSocket.OPEN)
    other.close()
  })

  it('closes upgrades for unknown paths when nobody else listens, and 404s a turned-off transport', async () => {
    const server = await startPushFixture({ transports: ['sse'] })
    await expect(FrameClient.open(`${server.origin.replace('http', 'ws')}/nowhere`)).rejects.toThrow()
    await expect(FrameClient.open(server.wsUrl)).rejects.toThrow('HTTP 404')
    const hello = await fetch(`${server.directUrl}/sse`)
    expect(hello.status).toBe(200)
    await hello.body?.cancel()
  })

  it('announces a 25 s heartbeat and long-poll hold by default, as createPushMock does', async () => {
    const server = await startPushFixture()
    const client = await FrameClient.open(server.wsUrl)
    expect(await client.next()).toMatchObject({ type: 'hello', heartbeatMs: 25_000, pollHoldMs: 25_000 })
  })

  it('lists the offered transports in hello in the given order', async () => {
    const server = await startPushFixture({ transports: ['sse', 'websocket'] })
    const client = await FrameClient.open(server.wsUrl)
    expect(await client.next()).toMatchObject({ type: 'hello', transports: ['sse', 'websocket'] })
  })

  it('serves frameworks through handleRequest and handleUpgrade', async () => {
    const push = createPushServer({ path: '/rt' })
    const http = createServer((req, res) => {
      if (!push.handleRequest(req, res)) res.end('framework')
    })
    http.on('upgrade', (req, socket, head) => {
      if (!push.handleUpgrade(req, socket, head)) socket.destroy()
    })
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
    const { port } = http.address() as AddressInfo
    try {
      expect(await (await fetch(`http://127.0.0.1:${port}/x`)).text()).toBe('framework')
      const client = await FrameClient.open(`ws://127.0.0.1:${port}/rt/ws`)
      expect(await client.next()).toMatchObject({ type: 'hello' })
      await client.close()
      const status = await new Promise<number | undefined>((resolve) => {
        request(`http://127.0.0.1:${port}/rt/publish`, { method: 'POST', headers: { 'Content-Type': 'application/json' } }, (res) => {
          res.resume()
          resolve(res.statusCode)
        }).end('{"channel":"c","data":1}')
      })
      expect(status).toBe(200)
    } finally {
      await push.close()
      await new Promise<void>((resolve) => http.close(() => resolve()))
    }
  })

  it('publishes from the server, validating its input', async () => {
    const server = await startPushFixture()
    await expect(server.push.publish('bad name', 1)).rejects.toMatchObject({ code: 'INVALID_CHANNEL' })
    await expect(server.push.publish('c', 1n)).rejects.toMatchObject({ code: 'BAD_FRAME' })
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    await expect(server.push.publish('c', cyclic)).rejects.toMatchObject({ code: 'BAD_FRAME' })
    await expect(server.push.publish('c', 1, { event: '' })).rejects.toMatchObject({ code: 'BAD_FRAME' })
    expect(await server.push.publish('c', null)).toMatchObject({ offset: 1 })
  })

  it('keeps what was published: an object changed afterwards changes neither history nor replays', async () => {
    const kept: Record<string, unknown>[] = []
    const server = await startPushFixture({
      // A hook that hands back an object it keeps and changes later.
      onPublish: ({ data }) => {
        const copy = { ...(data as object), hooked: 1 }
        kept.push(copy)
        return { data: copy }
      },
    })
    const live = await FrameClient.open(server.wsUrl)
    await live.nextOf('hello')
    live.send({ type: 'subscribe', channel: 'c', rid: '1' })
    const { epoch } = await live.nextOf('subscribed')
    const state = { n: 0, at: NaN }
    for (let n = 1; n <= 3; n++) {
      state.n = n
      await server.push.publish('c', state)
    }
    live.send({ type: 'publish', rid: '2', channel: 'c', data: { n: 4 } })
    await live.nextOf('ack')
    state.n = 99
    for (const each of kept) each.n = 99
    const replayed = await FrameClient.open(server.wsUrl)
    await replayed.nextOf('hello')
    replayed.send({ type: 'subscribe', channel: 'c', rid: '1', since: `${epoch}-0` })
    await replayed.nextOf('subscribed')
    const data = []
    for (let i = 0; i < 4; i++) data.push((await replayed.nextOf('message')).data)
    expect(data).toEqual([
      { n: 1, at: null },
      { n: 2, at: null },
      { n: 3, at: null },
      { n: 4, hooked: 1 },
    ])
  })

  it('restores the app listener when closed', async () => {
    const server = await startPushFixture({}, { app: (_req, res) => res.end('app') })
    await server.push.close()
    expect(server.http.listenerCount('request')).toBe(1)
    expect(await (await fetch(`${server.directUrl}/sse`)).text()).toBe('app')
  })

  it('serves several attachments and detaches them all on close', async () => {
    const app = (_req: unknown, res: { end(text: string): void }) => res.end('app')
    const http = createServer(app)
    const push = createPushServer()
    push.attach(http, { path: '/a' })
    push.attach(http, { path: '/b/' })
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
    const origin = `http://127.0.0.1:${(http.address() as AddressInfo).port}`
    try {
      for (const path of ['/a', '/b']) {
        const res = await fetch(`${origin}${path}/publish`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: '{"channel":"c","data":1}',
        })
        expect(res.status).toBe(200)
      }
      expect(await (await fetch(`${origin}/c/publish`)).text()).toBe('app')
      await push.close()
      expect(http.listeners('request')).toEqual([app])
      expect(http.listenerCount('upgrade')).toBe(0)
    } finally {
      await push.close()
      await new Promise<void>((resolve) => http.close(() => resolve()))
    }
  })

  it('rejects options it cannot honour', () => {
    expect(() => createPushServer({ heartbeatMs: 0 })).toThrow(RangeError)
    expect(() => createPushServer({ transports: ['mqtt' as 'sse'] })).toThrow(RangeError)
    expect(() => createPushServer({ longPollHoldMs: 0 })).toThrow(RangeError)
    expect(() => createPushServer({ iframeMaxBytes: 1000 })).toThrow(RangeError)
    expect(() => createPushServer({ allowedOrigins: ['https://a.example/path'] })).not.toThrow()
    expect(() => createPushServer({ allowedOrigins: ['not an origin'] })).toThrow(RangeError)
    expect(() => createPushServer({ allowedOrigins: ['ftp://a.example'] })).toThrow(RangeError)
  })
})
