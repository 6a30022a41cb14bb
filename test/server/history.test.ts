import { afterEach, describe, expect, it } from 'vitest'
import { createPushServer, type PushServer } from '../../src/server/index.js'

// push.history(channel, { limit, since }): a channel's recent messages, from the server side (what
// the demo's /demo/snapshot did by hand).

let push: PushServer | undefined
afterEach(async () => {
  await push?.close()
  push = undefined
})

const publishMany = async (server: PushServer, channel: string, count: number) => {
  for (let n = 1; n <= count; n++) await server.publish(channel, { n }, { event: n % 2 ? 'odd' : 'even' })
}

describe('push.history', () => {
  it('gives the newest messages, oldest first, with the channel position', async () => {
    push = createPushServer()
    await publishMany(push, 'orders', 5)
    const history = await push.history('orders', { limit: 3 })
    expect(history.offset).toBe(5)
    expect(history.messages.map((message) => message.data)).toEqual([{ n: 3 }, { n: 4 }, { n: 5 }])
    expect(history.messages[0]).toEqual({ channel: 'orders', event: 'odd', data: { n: 3 }, offset: 3, id: `${history.epoch}-3` })
    expect(history.gap).toBeUndefined()
  })

  it('gives everything when fewer than limit exist, and nothing for a new channel', async () => {
    push = createPushServer()
    await publishMany(push, 'orders', 2)
    expect((await push.history('orders')).messages.map((message) => message.offset)).toEqual([1, 2])
    const empty = await push.history('nobody-published')
    expect(empty).toMatchObject({ offset: 0, messages: [] })
  })

  it('pages forward with since', async () => {
    push = createPushServer()
    await publishMany(push, 'orders', 6)
    const { epoch } = await push.history('orders', { limit: 1 })
    const page = await push.history('orders', { since: `${epoch}-2`, limit: 2 })
    expect(page.messages.map((message) => message.offset)).toEqual([3, 4])
  })

  it('reports what history no longer holds as a gap', async () => {
    push = createPushServer({ historySize: 3 })
    await publishMany(push, 'orders', 6)
    const history = await push.history('orders', { limit: 5 })
    expect(history.messages.map((message) => message.offset)).toEqual([4, 5, 6])
    expect(history.gap).toBe('history-exhausted')
  })

  it('refuses bad input with what is allowed', async () => {
    push = createPushServer()
    await expect(push.history('a b')).rejects.toMatchObject({ code: 'INVALID_CHANNEL', message: expect.stringMatching(/1 to 128 of A-Z/) })
    await expect(push.history('orders', { limit: 0 })).rejects.toMatchObject({ code: 'INVALID_OPTIONS', message: 'limit: expected a whole number >= 1, got 0' })
    await expect(push.history('orders', { since: 'nope' })).rejects.toMatchObject({
      code: 'INVALID_OPTIONS',
      message: 'since "nope": not a message id <epoch>-<offset>',
    })
  })
})
