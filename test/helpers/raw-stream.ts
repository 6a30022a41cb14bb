import { request } from 'node:http'
import type { IncomingMessage } from 'node:http'
import type { ServerFrame } from '../../src/protocol/frames.js'
import { sleep } from './push-fixture.js'

// Raw readers of the HTTP transports for server tests: every frame a response carries, whatever
// its encoding (SSE `data:` lines, iframe `f("…")` scripts, poll NDJSON), with no client between.

/** An open SSE or iframe stream, read frame by frame. */
export class RawStream {
  readonly frames: ServerFrame[] = []
  raw = ''
  ended = false
  #read = 0

  constructor(
    readonly res: IncomingMessage,
    readonly close: () => void,
  ) {
    const iframe = String(res.headers['content-type']).startsWith('text/html')
    let buffer = ''
    res.setEncoding('utf8')
    res.on('data', (chunk: string) => {
      this.raw += chunk
      buffer += chunk
      if (iframe) {
        // Each script is `<script nonce="…">f(L1,L2,…)</script>`; the literals are JSON strings.
        let end: number
        while ((end = buffer.indexOf(')</script>')) !== -1) {
          const start = buffer.lastIndexOf('f(', end)
          const args = buffer.slice(start + 2, end)
          buffer = buffer.slice(end + ')</script>'.length)
          if (start === -1) continue
          for (const literal of JSON.parse(`[${args}]`) as string[]) this.frames.push(JSON.parse(literal) as ServerFrame)
        }
        return
      }
      let end: number
      while ((end = buffer.indexOf('\n\n')) !== -1) {
        const block = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        for (const line of block.split('\n')) {
          if (line.startsWith('data: ')) this.frames.push(JSON.parse(line.slice(6)) as ServerFrame)
        }
      }
    })
    res.on('end', () => (this.ended = true))
    res.on('close', () => (this.ended = true))
  }

  /** The next unread frame that is not a ping. */
  async next(timeoutMs = 2000): Promise<ServerFrame> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      while (this.#read < this.frames.length) {
        const frame = this.frames[this.#read++]
        if (frame && frame.type !== 'ping') return frame
      }
      if (this.ended) throw new Error(`stream ended; got ${JSON.stringify(this.frames)}`)
      if (Date.now() > deadline) throw new Error(`no frame in time; got ${JSON.stringify(this.frames)}`)
      await sleep(5)
    }
  }

  /** Every frame but pings so far. */
  seen(): ServerFrame[] {
    return this.frames.filter((frame) => frame.type !== 'ping')
  }
}

/** GETs `url` and resolves once the response headers arrived (any status). */
export function openRawStream(url: string, headers: Record<string, string> = {}): Promise<RawStream> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => resolve(new RawStream(res, () => req.destroy())))
    req.on('error', reject)
    req.end()
  })
}

/** One poll: its status and NDJSON frames. */
export async function rawPoll(url: string, headers: Record<string, string> = {}): Promise<{ status: number; frames: ServerFrame[]; body: string }> {
  const res = await fetch(url, { headers })
  const body = await res.text()
  const frames =
    res.status === 200 && res.headers.get('content-type')?.startsWith('application/x-ndjson')
      ? body
          .split('\n')
          .filter((line) => line !== '')
          .map((line) => JSON.parse(line) as ServerFrame)
      : []
  return { status: res.status, frames, body }
}
