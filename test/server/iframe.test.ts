import { request } from 'node:http'
import type { IncomingMessage } from 'node:http'
import { createContext, runInContext } from 'node:vm'
import { afterEach, describe, expect, it } from 'vitest'
import type { ServerFrame } from '../../src/protocol/frames.js'
import { cleanup, sleep, startPushFixture, waitFor } from '../helpers/push-fixture.js'
import type { PushFixture } from '../helpers/push-fixture.js'

afterEach(cleanup)

/**
 * Reads an iframe stream the way a browser would run it: every complete
 * `<script>` element is evaluated, in order, in one context whose `parent`
 * records what the document posts.
 */
class IframeReader {
  raw = ''
  /** Each postMessage call: its data (one frame's JSON text) and target origin. */
  readonly posted: { data: unknown; origin: unknown }[] = []
  /** The text of every script element run so far. */
  readonly scripts: string[] = []
  ended = false
  readonly #context = createContext({
    parent: { postMessage: (data: unknown, origin: unknown) => this.posted.push({ data, origin }) },
  })
  #scanned = 0
  #read = 0

  constructor(
    readonly res: IncomingMessage,
    readonly close: () => void,
  ) {
    res.setEncoding('utf8')
    res.on('data', (chunk: string) => {
      this.raw += chunk
      this.#run()
    })
    res.on('end', () => (this.ended = true))
  }

  get frames(): ServerFrame[] {
    return this.posted.map((p) => JSON.parse(p.data as string) as ServerFrame)
  }

  #run(): void {
    const pattern = /<script nonce="[^"]+">([\s\S]*?)<\/script>/g
    pattern.lastIndex = this.#scanned
    for (let match = pattern.exec(this.raw); match; match = pattern.exec(this.raw)) {
      const text = match[1] ?? ''
      this.scripts.push(text)
      runInContext(text, this.#context)
      this.#scanned = pattern.lastIndex
    }
  }

  async next(timeoutMs = 2000, pings = false): Promise<ServerFrame> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const frames = this.frames
      while (this.#read < frames.length) {
        const frame = frames[this.#read++]
        if (frame && (pings || frame.type !== 'ping')) return frame
      }
      if (Date.now() > deadline) throw new Error(`no frame in time; raw: ${this.raw.slice(-300)}`)
      await sleep(5)
    }
  }
}

function openIframe(server: PushFixture, query: string, headers: Record<string, string> = {}): Promise<IframeReader> {
  return new Promise((resolve, reject) => {
    const req = request(`${server.directUrl}/iframe?${query}`, { headers })
    req.on('response', (res) => resolve(new IframeReader(res, () => req.destroy())))
    req.on('error', reject)
    req.end()
  })
}

const originParam = (origin: string) => `origin=${encodeURIComponent(origin)}`

describe('iframe stream', () => {
  it('answers with an HTML document: headers, prologue with the origin, padding, then one script per batch', async () => {
    const server = await startPushFixture()
    const c = await server.push.publish('c', 1)
    const stream = await openIframe(server, `cursor=c&${originParam(server.origin)}`)
    const { headers } = stream.res
    expect(stream.res.statusCode).toBe(200)
    expect(headers['content-type']).toBe('text/html; charset=utf-8')
    expect(headers['cache-control']).toBe('no-store')
    expect(headers['x-content-type-options']).toBe('nosniff')
    expect(headers['x-accel-buffering']).toBe('no')
    const csp = String(headers['content-security-policy'])
    const nonce = /script-src 'nonce-([\w-]{16,})'/.exec(csp)?.[1]
    expect(csp).toBe(`default-src 'none'; script-src 'nonce-${nonce}'`)

    expect(await stream.next()).toMatchObject({ type: 'hello', transports: expect.arrayContaining(['iframe']) })
    expect(await stream.next()).toEqual({ type: 'subscribed', channel: 'c', epoch: c.epoch, offset: 1 })
    expect(stream.raw.startsWith('<!doctype html>\n<html><head><meta charset="utf-8">')).toBe(true)
    const prologue = `<script nonce="${nonce}">var o=${JSON.stringify(server.origin)};function f(){`
    expect(stream.raw).toContain(prologue)
    // 2 KiB of padding between the prologue and the first frame.
    const afterPrologue = stream.raw.slice(stream.raw.indexOf('</script>\n') + '</script>\n'.length)
    expect(afterPrologue).toMatch(/^ {2048}\n<script /)
    // Every script carries the nonce; every frame went to the named origin only.
    expect(stream.raw.match(/<script/g)?.length).toBe(stream.raw.match(new RegExp(`<script nonce="${nonce}">`, 'g'))?.length)
    expect(new Set(stream.posted.map((p) => p.origin))).toEqual(new Set([server.origin]))

    await server.push.publish('c', { n: 2 })
    expect(await stream.next()).toMatchObject({ type: 'message', data: { n: 2 }, offset: 2 })
    expect(stream.scripts.at(-1)).toMatch(/^f\(".*"\)$/)
    stream.close()
    await waitFor(() => server.push.stats().connections === 0, 'the server to forget every connection')
  })

  it('escapes frames so that no data can end or change the script, and posts them unchanged', async () => {
    const server = await startPushFixture()
    const stream = await openIframe(server, `cursor=x&${originParam(server.origin)}`)
    await stream.next()
    await stream.next()
    const nasty = {
      html: '</script><!--<script>alert(1)</script>-->&amp;',
      lines: 'a\u2028b\u2029c',
      quote: '"\'\\',
      unicode: 'ünï \u{1F600}',
    }
    // A key that a JavaScript object literal would turn into a prototype instead of a property.
    const proto = JSON.parse('{"__proto__":{"polluted":true},"kept":1}') as unknown
    await server.push.publish('x', nasty)
    await server.push.publish('x', proto)
    const first = await stream.next()
    const second = await stream.next()
    expect(first).toMatchObject({ type: 'message', data: nasty })
    if (second.type !== 'message') throw new Error('expected message')
    expect(JSON.stringify(second.data)).toBe('{"__proto__":{"polluted":true},"kept":1}')

    const body = stream.raw.slice(stream.raw.indexOf('</script>\n') + 10)
    // Inside scripts: no markup character at all, and no line separator anywhere in the body.
    for (const script of stream.scripts) expect(script).not.toMatch(/[<>&]/)
    expect(body).not.toMatch(/[\u2028\u2029]/)
    expect(body).not.toContain('<!--')
    expect(body.match(/<\/script>/g)?.length).toBe(stream.scripts.length - 1)
    // The script's arguments are JSON string literals whose text is the frame's JSON.
    const literal = /^f\((.*)\)$/.exec(stream.scripts.at(-1) ?? '')?.[1] ?? ''
    expect(literal).toContain('\\u003c/script\\u003e\\u003c!--')
    const args = JSON.parse(`[${literal}]`) as string[]
    expect(args.map((text) => JSON.parse(text) as ServerFrame).some((f) => f.type === 'message')).toBe(true)
    stream.close()
  })

  it('recycles the stream past iframeMaxBytes with a RECONNECT close frame; reopening continues', async () => {
    const server = await startPushFixture({ iframeMaxBytes: 8192 })
    const c = await server.push.publish('c', 0)
    const stream = await openIframe(server, `cursor=c=${c.epoch}-1&${originParam(server.origin)}`)
    await stream.next()
    await stream.next()
    const blob = 'y'.repeat(1000)
    for (let i = 2; i <= 12; i++) {
      await server.push.publish('c', blob)
      await new Promise((resolve) => setImmediate(resolve))
    }
    await waitFor(() => stream.ended, 'the stream to end')
    const frames = stream.frames.filter((f) => f.type !== 'ping')
    expect(frames.at(-1)).toEqual({ type: 'close', code: 'RECONNECT', message: expect.any(String), retryMs: 0 })
    expect(Buffer.byteLength(stream.raw)).toBeGreaterThanOrEqual(8192)
    expect(Buffer.byteLength(stream.raw)).toBeLessThan(8192 + 2000)
    const offsets = frames.flatMap((f) => (f.type === 'message' ? [f.offset] : []))
    expect(offsets[0]).toBe(2)
    expect(offsets.length).toBeLessThan(11)
    await waitFor(() => server.push.stats().connections === 0, 'the server to forget every connection')

    const last = offsets.at(-1) ?? 0
    const again = await openIframe(server, `cursor=c=${c.epoch}-${last}&${originParam(server.origin)}`)
    await again.next()
    expect(await again.next()).toMatchObject({ type: 'subscribed', offset: last })
    expect(await again.next()).toMatchObject({ type: 'message', offset: last + 1 })
    again.close()
  })

  it('accepts only its own origin and allowedOrigins: 403 ORIGIN_REJECTED for others, 400 without one', async () => {
    const server = await startPushFixture({ allowedOrigins: ['https://app.example.com/'] })
    const status = async (query: string, headers: Record<string, string> = {}) => {
      const res = await fetch(`${server.directUrl}/iframe?cursor=c&${query}`, { headers })
      await res.body?.cancel()
      return res.status
    }
    expect(await status(originParam('https://evil.example'))).toBe(403)
    expect(await status(originParam('http://app.example.com'))).toBe(403)
    // Another port is another origin.
    expect(await status(originParam(server.origin.replace(/:\d+$/, ':1')))).toBe(403)
    expect(await status(originParam(server.origin))).toBe(200)
    expect(await status(originParam('https://app.example.com'))).toBe(200)
    // The server cannot tell whether a proxy in front terminated TLS: https of its own host is its own.
    expect(await status(originParam(server.origin.replace('http:', 'https:')))).toBe(200)
    // Behind a TLS-terminating proxy that says so, the own origin is https only: an http page is another origin.
    expect(await status(originParam(server.origin.replace('http:', 'https:')), { 'X-Forwarded-Proto': 'https' })).toBe(200)
    expect(await status(originParam(server.origin), { 'X-Forwarded-Proto': 'https' })).toBe(403)
    for (const bad of ['', 'origin=null', originParam('https://app.example.com/'), originParam('javascript:alert(1)')]) {
      expect(await status(bad)).toBe(400)
    }
    const forbidden = await fetch(`${server.directUrl}/iframe?cursor=c&${originParam('https://evil.example')}`)
    expect(await forbidden.json()).toMatchObject({ type: 'error', code: 'ORIGIN_REJECTED' })
    expect(server.push.stats().connections).toBe(0)
  })

  it('sends ping frames every heartbeatMs', async () => {
    const server = await startPushFixture({ heartbeatMs: 100 })
    const stream = await openIframe(server, `cursor=c&${originParam(server.origin)}`)
    await stream.next()
    await stream.next()
    expect(await stream.next(1000, true)).toEqual({ type: 'ping' })
    stream.close()
  })

  it('authenticates with the request headers (cookies); 401 without', async () => {
    const server = await startPushFixture({
      authenticate: ({ token, transport, headers }) => transport === 'iframe' && token === undefined && headers.cookie === 'sid=ok',
    })
    const denied = await openIframe(server, `cursor=c&${originParam(server.origin)}`)
    expect(denied.res.statusCode).toBe(401)
    const stream = await openIframe(server, `cursor=c&${originParam(server.origin)}`, { Cookie: 'sid=ok' })
    expect(await stream.next()).toMatchObject({ type: 'hello' })
    stream.close()
  })

  it('ends the stream with the shutdown close frame when the server closes', async () => {
    const server = await startPushFixture()
    const stream = await openIframe(server, `cursor=c&${originParam(server.origin)}`)
    await stream.next()
    await stream.next()
    await server.push.close()
    await waitFor(() => stream.ended, 'the stream to end')
    expect(stream.frames.at(-1)).toMatchObject({ type: 'close', code: 'SERVER_SHUTDOWN' })
  })
})
