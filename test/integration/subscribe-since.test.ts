import { afterEach, describe, expect, it } from 'vitest'
import { PushClient, PushError, type GapInfo, type PushMessage } from '../../src/index.js'
import { startPushFixture, waitFor, type PushFixture } from '../helpers/push-fixture.js'

describe('subscribe with since (resume from a stored message id)', () => {
  let fixture: PushFixture
  const clients: PushClient[] = []
  afterEach(async () => {
    for (const client of clients.splice(0)) client.close()
    await fixture.close()
  })
  const start = async (historySize = 100) => {
    fixture = await startPushFixture({ heartbeatMs: 5000, historySize })
    const client = new PushClient({ url: fixture.url, transports: ['websocket'] })
    clients.push(client)
    return client
  }

  it('replays what came after the id, then goes on live', async () => {
    const client = await start()
    const acks = []
    for (let n = 1; n <= 5; n++) acks.push(await fixture.push.publish('orders', { n }))
    const received: PushMessage[] = []
    client.subscribe('orders', (m) => received.push(m), { since: acks[1]?.id })
    client.connect()
    await waitFor(() => received.length === 3, 'replay')
    await fixture.push.publish('orders', { n: 6 })
    await waitFor(() => received.length === 4, 'live')
    expect(received.map((m) => (m.data as { n: number }).n)).toEqual([3, 4, 5, 6])
  })

  it('reports what history no longer holds as a gap', async () => {
    const client = await start(2)
    const first = await fixture.push.publish('orders', { n: 1 })
    for (let n = 2; n <= 5; n++) await fixture.push.publish('orders', { n })
    const received: PushMessage[] = []
    const gaps: GapInfo[] = []
    client.subscribe('orders', (m) => received.push(m), { since: first.id }).on('gap', (g) => gaps.push(g))
    client.connect()
    await waitFor(() => received.length === 2, 'replay of what is left')
    expect(gaps).toEqual([{ channel: 'orders', reason: 'history-exhausted', from: first.id, to: `${first.epoch}-3` }])
    expect(received.map((m) => m.offset)).toEqual([4, 5])
  })

  it('rejects a since that is not a message id, as a client-side option error (not a wire code)', async () => {
    const client = await start()
    expect(() => client.subscribe('orders', undefined, { since: 'yesterday' })).toThrow(PushError)
    expect(() => client.subscribe('orders', undefined, { since: 'nope' })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTIONS', message: 'since "nope": not <epoch>-<offset>' }),
    )
  })
})
