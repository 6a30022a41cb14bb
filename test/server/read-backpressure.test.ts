import { afterEach, describe, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import { startMemoryServer } from '../helpers/memory-probe.js'
import type { MemoryServer } from '../helpers/memory-probe.js'
import { sleep, waitFor } from '../helpers/push-fixture.js'

// Issue 11: requests of a WebSocket connection run one after another; while a slow onPublish
// works, a client must not make the server read and hold everything it sends. The server
// (in a child process, weighed alone) stops reading the connection with maxRequestsInFlight
// requests waiting.

const MiB = 1024 * 1024
const PUBLISHES = 1000
const DATA_BYTES = 30 * 1024
const MAX_IN_FLIGHT = 16

let server: MemoryServer | undefined
afterEach(async () => {
  await server?.close()
  server = undefined
})

describe('WebSocket read backpressure', () => {
  it('holds a bounded number of 1,000 queued publishes while onPublish is slow, then answers them all', async () => {
    server = await startMemoryServer({ slowPublish: true, options: { maxRequestsInFlight: MAX_IN_FLIGHT } })
    const { port, baseline } = server
    const ws = new WebSocket(`ws://127.0.0.1:${port}/push/ws`, ['pushline.v1'])
    const acks: string[] = []
    ws.on('message', (data) => {
      for (const line of String(data).split('\n')) {
        const frame = JSON.parse(line) as { type: string; rid?: string }
        if (frame.type === 'ack' && frame.rid) acks.push(frame.rid)
        if (frame.type === 'ping') ws.send('{"type":"pong"}')
      }
    })
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve())
      ws.once('error', reject)
    })
    const data = 'd'.repeat(DATA_BYTES)
    for (let i = 0; i < PUBLISHES; i++) ws.send(JSON.stringify({ type: 'publish', rid: `r${i}`, channel: 'c', data }))
    const current = server
    await waitFor(async () => (await current.weigh()).hookCalls >= 1, 'the first publish to reach the hook')
    await sleep(1000)
    const held = await server.weigh()
    const growth = held.heapUsed + held.external - (baseline.heapUsed + baseline.external)
    // What the server may hold: the requests in flight and the chunk being read, with their copies; and GC noise.
    const bound = MAX_IN_FLIGHT * DATA_BYTES * 4 + 8 * MiB
    console.log(
      `read backpressure: ${PUBLISHES} publishes of ${DATA_BYTES / 1024} KiB queued behind a slow hook: ` +
        `heap+external growth ${(growth / MiB).toFixed(1)} MiB (bound ${(bound / MiB).toFixed(1)} MiB)`,
    )
    expect(growth).toBeLessThan(bound)
    await server.release()
    await waitFor(() => acks.length === PUBLISHES, 'an ack for every publish', 30_000)
    expect(acks).toEqual(Array.from({ length: PUBLISHES }, (_, i) => `r${i}`))
    ws.terminate()
  }, 60_000)
})
