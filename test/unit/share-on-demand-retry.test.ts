/**
 * `share: true` when pushline/share fails to load (a chunk request while offline, say): the attempt
 * fails like a transport that could not open, and the next attempt imports it again.
 */
import { describe, expect, it, vi } from 'vitest'
import { fakeTransport, memoryStorage } from './fakes.js'

let failures = 1
vi.mock('../../src/client/share.js', async (importOriginal) => {
  if (failures-- > 0) throw new Error('chunk failed to load')
  return importOriginal()
})

describe('share: true, when its module fails to load', () => {
  it('fails the attempt, then loads it again on the next one', async () => {
    const { PushClient } = await import('../../src/index.js')
    const ws = fakeTransport('websocket')
    const errors: string[] = []
    const client = new PushClient({
      url: 'http://push.test/push',
      transports: [ws.factory],
      share: true,
      storage: memoryStorage(),
      reconnect: { retryDelayMs: () => 300 },
    })
    client.on('error', (error) => errors.push(error.code))
    client.connect()
    await vi.waitFor(() => expect(errors).toEqual(['TRANSPORT_FAILED']))
    expect(ws.instances).toEqual([])
    await vi.waitFor(() => expect(ws.instances).toHaveLength(1))
    ws.last.hello(['websocket'])
    expect(client.state).toBe('open')
    client.close()
  })
})
