import { connect as tcpConnect } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { createPushServer } from '../../src/server/index.js'
import { FrameClient, cleanup, startPushFixture } from '../helpers/push-fixture.js'
import type { PushFixture } from '../helpers/push-fixture.js'

afterEach(cleanup)

const APP = 'http://app.example.com:5173'
const EVIL = 'https://evil.example'

/** Sends a raw upgrade request and resolves with everything the server answered until it closed (or 1 s). */
function rawUpgrade(server: PushFixture, origin: string | undefined): Promise<string> {
  const { port } = new URL(server.directUrl)
  return new Promise((resolve, reject) => {
    const socket = tcpConnect(Number(port), '127.0.0.1')
    let answer = ''
    const done = () => {
      clearTimeout(timer)
      socket.destroy()
      resolve(answer)
    }
    const timer = setTimeout(done, 1000)
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => {
      answer += chunk
      // A 101 leaves the socket open: what matters is its status line.
      if (answer.startsWith('HTTP/1.1 101') && answer.includes('\r\n\r\n')) done()
    })
    socket.on('end', done)
    socket.on('error', reject)
    socket.write(
      'GET /push/ws HTTP/1.1\r\n' +
        `Host: 127.0.0.1:${port}\r\n` +
        'Upgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n' +
        'Sec-WebSocket-Protocol: pushline.v1\r\n' +
        (origin === undefined ? '' : `Origin: ${origin}\r\n`) +
        '\r\n',
    )
  })
}

describe('WebSocket upgrade origin check (CSWSH)', () => {
  it('answers 403 ORIGIN_REJECTED and never 101 for an origin not allowed; own, listed and no Origin pass', async () => {
    const server = await startPushFixture({ allowedOrigins: [APP] })
    const refused = await rawUpgrade(server, EVIL)
    expect(refused).toMatch(/^HTTP\/1\.1 403 Forbidden\r\n/)
    expect(refused).not.toContain(' 101 ')
    expect(JSON.parse(refused.slice(refused.indexOf('\r\n\r\n') + 4))).toEqual({
      type: 'error',
      code: 'ORIGIN_REJECTED',
      message: `origin ${EVIL} is not allowed`,
    })
    expect(await rawUpgrade(server, 'null')).toMatch(/^HTTP\/1\.1 403 /)
    expect(await rawUpgrade(server, APP)).toMatch(/^HTTP\/1\.1 101 /)
    expect(await rawUpgrade(server, server.origin)).toMatch(/^HTTP\/1\.1 101 /)
    expect(await rawUpgrade(server, undefined)).toMatch(/^HTTP\/1\.1 101 /)
    // Same host, another port: another origin.
    expect(await rawUpgrade(server, server.origin.replace(/:\d+$/, ':1'))).toMatch(/^HTTP\/1\.1 403 /)
  })

  it('takes a function that decides', async () => {
    const seen: string[] = []
    const server = await startPushFixture({
      allowedOrigins: (origin) => {
        seen.push(origin)
        return origin.endsWith('.example.com')
      },
    })
    expect(await rawUpgrade(server, 'https://a.example.com')).toMatch(/^HTTP\/1\.1 101 /)
    expect(await rawUpgrade(server, EVIL)).toMatch(/^HTTP\/1\.1 403 /)
    expect(seen).toEqual(['https://a.example.com', EVIL])
    // A ws client in Node sends no Origin unless told to.
    const client = await FrameClient.open(server.wsUrl)
    expect(await client.next()).toMatchObject({ type: 'hello' })
  })
})

describe('CORS', () => {
  const preflight = (server: PushFixture, endpoint: string, origin: string, method = 'GET') =>
    fetch(`${server.directUrl}/${endpoint}`, {
      method: 'OPTIONS',
      headers: { Origin: origin, 'Access-Control-Request-Method': method, 'Access-Control-Request-Headers': 'authorization' },
    })

  it('answers preflights of publish, poll and sse for allowed origins only', async () => {
    const server = await startPushFixture({ allowedOrigins: [APP] })
    for (const [endpoint, method] of [['publish', 'POST'], ['poll', 'GET'], ['sse', 'GET']] as const) {
      for (const origin of [APP, server.origin]) {
        const ok = await preflight(server, endpoint, origin, method)
        expect(ok.status).toBe(204)
        expect(ok.headers.get('access-control-allow-origin')).toBe(origin)
        expect(ok.headers.get('access-control-allow-credentials')).toBe('true')
        expect(ok.headers.get('access-control-allow-methods')).toContain(method)
        expect(ok.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('authorization')
        expect(ok.headers.get('vary')).toBe('Origin')
      }
      const refused = await preflight(server, endpoint, EVIL, method)
      expect(refused.status).toBe(403)
      expect(refused.headers.get('access-control-allow-origin')).toBeNull()
      expect(refused.headers.get('access-control-allow-credentials')).toBeNull()
    }
  })

  it('echoes an allowed Origin with credentials, never *; refuses others with a readable ORIGIN_REJECTED body', async () => {
    const server = await startPushFixture({ allowedOrigins: [APP] })
    const allowed = await fetch(`${server.directUrl}/poll?cursor=a&hold=0`, { headers: { Origin: APP } })
    expect(allowed.status).toBe(200)
    expect(allowed.headers.get('access-control-allow-origin')).toBe(APP)
    expect(allowed.headers.get('access-control-allow-credentials')).toBe('true')
    expect(allowed.headers.get('vary')).toBe('Origin')
    await allowed.text()

    const publish = await fetch(`${server.directUrl}/publish`, {
      method: 'POST',
      headers: { Origin: APP, 'Content-Type': 'application/json' },
      body: JSON.stringify({ channel: 'a', data: 1 }),
    })
    expect(publish.status).toBe(200)
    expect(publish.headers.get('access-control-allow-origin')).toBe(APP)

    for (const endpoint of ['poll?cursor=a&hold=0', 'sse?cursor=a', 'publish']) {
      const refused = await fetch(`${server.directUrl}/${endpoint}`, {
        method: endpoint === 'publish' ? 'POST' : 'GET',
        headers: { Origin: EVIL, 'Content-Type': 'application/json' },
        body: endpoint === 'publish' ? JSON.stringify({ channel: 'a', data: 1 }) : undefined,
      })
      expect(refused.status).toBe(403)
      // Readable by the page (no credentials allowed), so a client can tell why it failed.
      expect(refused.headers.get('access-control-allow-origin')).toBe(EVIL)
      expect(refused.headers.get('access-control-allow-credentials')).toBeNull()
      expect(await refused.json()).toEqual({ type: 'error', code: 'ORIGIN_REJECTED', message: `origin ${EVIL} is not allowed` })
    }
    // Nothing was published or subscribed for the refused requests.
    expect(server.push.stats().connections).toBe(0)
    expect((await server.push.publish('a', 2)).offset).toBe(2)
  })

  it('lets requests without Origin (Node clients) and same-origin pages through by default, and nobody else', async () => {
    const server = await startPushFixture()
    const none = await fetch(`${server.directUrl}/poll?cursor=a&hold=0`)
    expect(none.status).toBe(200)
    expect(none.headers.get('access-control-allow-origin')).toBeNull()
    await none.text()
    const own = await fetch(`${server.directUrl}/poll?cursor=a&hold=0`, { headers: { Origin: server.origin } })
    expect(own.status).toBe(200)
    await own.text()
    const other = await fetch(`${server.directUrl}/poll?cursor=a&hold=0`, { headers: { Origin: APP } })
    expect(other.status).toBe(403)
    await other.text()
  })

  it('rejects allowedOrigins entries that are no http(s) origin', () => {
    expect(() => createPushServer({ allowedOrigins: ['not an origin'] })).toThrow(RangeError)
    expect(() => createPushServer({ allowedOrigins: ['https://a.example/path'] })).not.toThrow()
  })
})
