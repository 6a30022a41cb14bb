import WebSocket from 'ws'
import type { RawProbe } from './driver.js'

const errorCode = (text: string) => (JSON.parse(text) as { type: string; code?: string }).code ?? 'none'

/** Speaks raw WebSocket to the server: frames no PushClient would send. */
export const websocketProbe: RawProbe = {
  malformed: (url) => sendRaw(url, '{"type":"subscribe","channel":'),
  oversized: (url, max) => sendRaw(url, JSON.stringify({ type: 'publish', rid: 'big', channel: 'x', data: 'x'.repeat(max) })),
}

function sendRaw(url: string, payload: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/ws`, 'pushline.v1')
    const timer = setTimeout(() => reject(new Error('no error frame from the server')), 5000)
    ws.on('message', (raw) => {
      for (const text of raw.toString().split('\n')) {
        const frame = JSON.parse(text) as { type: string }
        if (frame.type === 'hello') ws.send(payload)
        if (frame.type === 'error') {
          clearTimeout(timer)
          ws.close()
          resolve(errorCode(text))
        }
      }
    })
    ws.on('error', reject)
  })
}

/** Speaks raw HTTP to the SSE and publish endpoints. */
export const sseProbe: RawProbe = {
  async malformed(url) {
    const res = await fetch(`${url}/sse?cursor=${encodeURIComponent('orders=not-a-position!')}`)
    if (res.status !== 400) throw new Error(`expected 400, got ${res.status}`)
    return errorCode(await res.text())
  },
  oversized: oversizedPublish,

}

/** POSTs a publish larger than `max` bytes: every HTTP transport publishes this way (protocol.md 3.4). */
export async function oversizedPublish(url: string, max: number): Promise<string> {
  const res = await fetch(`${url}/publish`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ type: 'publish', rid: 'big', channel: 'x', data: 'x'.repeat(max) }),
  })
  if (res.status !== 413) throw new Error(`expected 413, got ${res.status}`)
  return errorCode(await res.text())
}

/** Speaks raw HTTP to the poll and publish endpoints (protocol.md 3.4, 3.5). */
export const pollProbe: RawProbe = {
  async malformed(url) {
    const res = await fetch(`${url}/poll?cursor=${encodeURIComponent('orders=not-a-position!')}`)
    if (res.status !== 400) throw new Error(`expected 400, got ${res.status}`)
    return errorCode(await res.text())
  },
  oversized: oversizedPublish,
}
