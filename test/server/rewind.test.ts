/**
 * Rewind on subscribe, server side (protocol.md 4, rule 5): where the replay starts, the bound
 * (`maxRewind`), the paged replay it goes through, and what the wire refuses.
 */
import { afterEach, describe, expect, it } from 'vitest'
import type { Position } from '../../src/protocol/position.js'
import { MemoryBroker, createPushServer } from '../../src/server/index.js'
import type { Broker, RecoverOptions, Recovery, StoredMessage } from '../../src/server/index.js'
import { REPLAY_PAGE_MESSAGES } from '../../src/server/hub/replay.js'
import { cleanup, connect, startPushFixture, type PushFixture } from '../helpers/push-fixture.js'

afterEach(cleanup)

const publishMany = async (fixture: PushFixture, channel: string, count: number) => {
  for (let n = 1; n <= count; n++) await fixture.push.publish(channel, { n })
}

/** A MemoryBroker that records the limit of every recover call. */
class RecordingBroker implements Broker {
  readonly inner = new MemoryBroker()
  readonly limits: (number | undefined)[] = []
  publish(channel: string, event: string, data: unknown): Promise<StoredMessage> {
    return this.inner.publish(channel, event, data)
  }
  subscribe(channel: string, listener: (m: StoredMessage) => void): Promise<() => void> {
    return this.inner.subscribe(channel, listener)
  }
  recover(channel: string, since: Position | undefined, options?: RecoverOptions): Promise<Recovery> {
    if (since) this.limits.push(options?.limit)
    return this.inner.recover(channel, since, options)
  }
  close(): Promise<void> {
    return this.inner.close()
  }
}

describe('rewind on subscribe (server)', () => {
  it('answers `subscribed` n before the newest, then the n messages, then live', async () => {
    const fixture = await startPushFixture()
    await publishMany(fixture, 'config', 5)
    const client = await connect(fixture)
    client.send({ type: 'subscribe', channel: 'config', rid: 'r1', rewind: 3 })
    const subscribed = await client.next()
    expect(subscribed).toMatchObject({ type: 'subscribed', channel: 'config', rid: 'r1', offset: 2 })
    expect(subscribed).not.toHaveProperty('gap')
    for (const offset of [3, 4, 5]) expect(await client.next()).toMatchObject({ type: 'message', offset, data: { n: offset } })
    await fixture.push.publish('config', { n: 6 })
    expect(await client.next()).toMatchObject({ type: 'message', offset: 6 })
  })

  it('gives what history holds, without a gap, when it holds fewer than n', async () => {
    const fixture = await startPushFixture({ historySize: 2 })
    await publishMany(fixture, 'short', 5)
    const client = await connect(fixture)
    client.send({ type: 'subscribe', channel: 'short', rewind: 10 })
    const subscribed = await client.next()
    expect(subscribed).toMatchObject({ type: 'subscribed', offset: 3 })
    expect(subscribed).not.toHaveProperty('gap')
    expect(await client.next()).toMatchObject({ type: 'message', offset: 4 })
    expect(await client.next()).toMatchObject({ type: 'message', offset: 5 })
    client.send({ type: 'subscribe', channel: 'never-published', rewind: 10 })
    expect(await client.next()).toEqual({ type: 'subscribed', channel: 'never-published', epoch: expect.any(String), offset: 0 })
    expect(await client.idle()).toEqual([])
  })

  it('clamps n to maxRewind (100 by default) and replays it in pages', async () => {
    const broker = new RecordingBroker()
    const fixture = await startPushFixture({ broker })
    await publishMany(fixture, 'big', 150)
    const client = await connect(fixture)
    client.send({ type: 'subscribe', channel: 'big', rewind: 1_000_000 })
    expect(await client.next()).toMatchObject({ type: 'subscribed', offset: 50 })
    for (let offset = 51; offset <= 150; offset++) expect(await client.next()).toMatchObject({ type: 'message', offset })
    expect(await client.idle()).toEqual([])
    // The rewind went through the paged replay: every page at most REPLAY_PAGE_MESSAGES.
    expect(broker.limits.length).toBeGreaterThanOrEqual(2)
    expect(broker.limits.every((limit) => limit === REPLAY_PAGE_MESSAGES)).toBe(true)

    const bounded = await startPushFixture({ maxRewind: 2 })
    await publishMany(bounded, 'big', 5)
    const other = await connect(bounded)
    other.send({ type: 'subscribe', channel: 'big', rewind: 4 })
    expect(await other.next()).toMatchObject({ type: 'subscribed', offset: 3 })
    expect(await other.next()).toMatchObject({ type: 'message', offset: 4 })
    expect(await other.next()).toMatchObject({ type: 'message', offset: 5 })
  })

  it('does nothing for maxRewind 0, and refuses a maxRewind that is not a count', async () => {
    const fixture = await startPushFixture({ maxRewind: 0 })
    await publishMany(fixture, 'c', 3)
    const client = await connect(fixture)
    client.send({ type: 'subscribe', channel: 'c', rewind: 3 })
    expect(await client.next()).toMatchObject({ type: 'subscribed', offset: 3 })
    expect(await client.idle()).toEqual([])
    for (const maxRewind of [-1, 1.5, Number.NaN]) expect(() => createPushServer({ maxRewind })).toThrow(/maxRewind/)
  })

  it('answers BAD_FRAME for rewind with since, and for a rewind that is not a count; the connection goes on', async () => {
    const fixture = await startPushFixture()
    const { epoch } = await fixture.push.publish('c', 1)
    const client = await connect(fixture)
    client.send({ type: 'subscribe', channel: 'c', rid: 'a', rewind: 2, since: `${epoch}-0` })
    expect(await client.next()).toEqual({
      type: 'error',
      code: 'BAD_FRAME',
      message: 'rewind: not with since: a subscribe resumes from a position or rewinds, not both (protocol.md 2.2)',
      rid: 'a',
      channel: 'c',
    })
    for (const rewind of [-1, 1.5, '3', null]) {
      client.send({ type: 'subscribe', channel: 'c', rid: 'b', rewind })
      expect(await client.next()).toMatchObject({ type: 'error', code: 'BAD_FRAME', message: expect.stringMatching(/^rewind: /), rid: 'b' })
    }
    client.send({ type: 'subscribe', channel: 'c', rewind: 1 })
    expect(await client.next()).toMatchObject({ type: 'subscribed', offset: 0 })
    expect(await client.next()).toMatchObject({ type: 'message', offset: 1 })
  })

  it('takes `channel~n` in a stream cursor, and answers 400 BAD_FRAME for a malformed one', async () => {
    const fixture = await startPushFixture()
    await publishMany(fixture, 'news', 4)
    const poll = await fetch(`${fixture.directUrl}/poll?cursor=news~2,other&hold=0`)
    expect(poll.status).toBe(200)
    const frames = (await poll.text()).trim().split('\n').map((line) => JSON.parse(line) as { type: string; offset?: number; channel?: string })
    expect(frames.map((frame) => [frame.type, frame.channel, frame.offset])).toEqual([
      ['hello', undefined, undefined],
      ['subscribed', 'news', 2],
      ['message', 'news', 3],
      ['message', 'news', 4],
      ['subscribed', 'other', 0],
    ])
    for (const cursor of ['news~', 'news~x', 'news~-1', 'news~12345678901']) {
      const refused = await fetch(`${fixture.directUrl}/poll?cursor=${encodeURIComponent(cursor)}&hold=0`)
      expect(refused.status).toBe(400)
      expect(await refused.json()).toMatchObject({ type: 'error', code: 'BAD_FRAME', message: expect.stringContaining('rewind') })
    }
  })

  it('lets Last-Event-ID override a rewind entry with its position (a native EventSource reconnect)', async () => {
    const fixture = await startPushFixture()
    const { epoch } = await fixture.push.publish('news', 1)
    await publishMany(fixture, 'news', 3)
    const controller = new AbortController()
    const response = await fetch(`${fixture.directUrl}/sse?cursor=news~3`, {
      headers: { 'Last-Event-ID': `news=${epoch}-3` },
      signal: controller.signal,
    })
    const reader = response.body!.getReader()
    let text = ''
    while (!text.includes('"offset":4,"id"')) text += new TextDecoder().decode((await reader.read()).value)
    controller.abort()
    const data = text.split('\n').filter((line) => line.startsWith('data:')).map((line) => JSON.parse(line.slice(5)) as { type: string; offset?: number })
    expect(data.filter((frame) => frame.type !== 'ping').map((frame) => [frame.type, frame.offset])).toEqual([
      ['hello', undefined],
      ['subscribed', 3],
      ['message', 4],
    ])
  })
})
