import type { IncomingMessage, ServerResponse } from 'node:http'
import type { ServerFrame } from '../../protocol/frames.js'

// Plain HTTP exchanges of the push endpoints: frame bodies in and out, tokens.

/** Answers with one frame as a JSON body. */
export function sendFrame(res: ServerResponse, status: number, frame: ServerFrame, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return
  const body = JSON.stringify(frame)
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(body)),
    'Cache-Control': 'no-store',
    // A browser must never take an error that quotes client input for HTML or script.
    'X-Content-Type-Options': 'nosniff',
    ...headers,
  })
  res.end(body)
}

export type BodyRead =
  | { ok: true; bytes: number; text: string }
  | { ok: false; reason: 'too-large' | 'aborted' | 'timeout' }

/**
 * Reads a request body up to `limit` bytes within `timeoutMs`. Past the limit it stops keeping
 * data (it still drains the request, so the 413 answer reaches a client that
 * is still sending). The deadline keeps a client trickling a body from holding
 * the request (and its buffer) for Node's server-wide requestTimeout (300 s).
 */
export function readBody(req: IncomingMessage, limit: number, timeoutMs: number): Promise<BodyRead> {
  return new Promise((resolve) => {
    const declared = Number(req.headers['content-length'])
    if (Number.isFinite(declared) && declared > limit) {
      req.resume()
      resolve({ ok: false, reason: 'too-large' })
      return
    }
    const chunks: Buffer[] = []
    let bytes = 0
    let done = false
    const finish = (result: BodyRead): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      resolve(result)
    }
    const timer = setTimeout(() => {
      chunks.length = 0
      finish({ ok: false, reason: 'timeout' })
    }, timeoutMs)
    req.on('data', (chunk: Buffer) => {
      if (done) return
      bytes += chunk.length
      if (bytes > limit) {
        chunks.length = 0
        finish({ ok: false, reason: 'too-large' })
        return
      }
      chunks.push(chunk)
    })
    req.on('end', () => finish({ ok: true, bytes, text: Buffer.concat(chunks, bytes).toString('utf8') }))
    req.on('error', () => finish({ ok: false, reason: 'aborted' }))
    req.on('close', () => finish({ ok: false, reason: 'aborted' }))
  })
}

/** Matches `application/json` and `application/<x>+json`, with parameters. */
export function isJsonContentType(value: string | undefined): boolean {
  return value !== undefined && /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i.test(value)
}
