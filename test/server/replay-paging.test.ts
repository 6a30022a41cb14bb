import { afterEach, describe, expect, it } from 'vitest'
import type { ServerFrame } from '../../src/protocol/frames.js'
import { MemoryBroker } from '../../src/server/index.js'
import type { Broker, RecoverOptions, Recovery } from '../../src/server/index.js'
import type { Position } from '../../src/protocol/position.js'
import { Connection } from '../../src/server/hub/connection.js'
import type { FlushScheduler } from '../../src/server/hub/connection.js'
import { Hub } from '../../src/server/hub/hub.js'
import type { OutFrame } from '../../src/server/hub/out-frame.js'
import { cleanup, connect, startPushFixture, waitFor } from '../helpers/push-fixture.js'
import type { FrameClient } from '../helpers/push-fixture.js'

// Replays go out in pages and only while the connection has room (issue 11): a client that
// reads gets all of a history much larger than maxBufferedBytes, in order, nothing twice;
// live messages published while its replay waits are not lost even past the backlog bound.

afterEach(cleanup)

/** A connection whose client reads only when told: `unread` bytes wait unread until `drain()`. */
class StuckConnection extends Connection {
  readonly transport = 'websocket'
  readonly written: OutFrame[] = []
  unread = 0

  constructor(scheduler: FlushScheduler) {
    super(scheduler)
  }

  protected write(frames: readonly OutFrame[]): void {
    this.written.push(...frames)
  }

  protected end(): void {}

  bufferedBytes(): number {
    return this.unread
  }

  isResponsive(): boolean {
    return true
  }

  terminate(): void {}

  drain(): void {
    this.drained()
  }

  lastOffset(): number | undefined {
    const last = this.written.at(-1)?.frame
    return last?.type === 'message' || last?.type === 'gap' ? last.offset : undefined
  }
}

/** A MemoryBroker that records the limits the hub asks recover for. */
class PageRecordingBroker extends MemoryBroker implements Broker {
  readonly limits: (number | undefined)[] = []
  override recover(channel: string, since: Position | undefined, options?: RecoverOptions): Promise<Recovery> {
    this.limits.push(options?.limit)
    return super.recover(channel, since, options)
  }
}

const messagesOf = (client: FrameClient, channel: string) =>
  client.frames.filter((f): f is Extract<ServerFrame, { type: 'message' }> => f.type === 'message' && f.channel === channel)

describe('paged replay', () => {
  it('replays a history 30x maxBufferedBytes to a reading client, whole and in order, page by page', async () => {
    const broker = new PageRecordingBroker({ historySize: 2000 })
    const server = await startPushFixture({ broker, maxBufferedBytes: 64 * 1024 })
    const payload = 'p'.repeat(1000)
    for (let i = 1; i <= 2000; i++) await server.push.publish('big', { i, payload })
    const client = await connect(server)
    client.send({ type: 'subscribe', channel: 'big', since: 'madeup-5', rid: 's' })
    const subscribed = await client.nextOf('subscribed')
    expect(subscribed).toMatchObject({ channel: 'big', offset: 0, gap: 'epoch-changed' })
    await waitFor(() => messagesOf(client, 'big').length >= 2000, 'the whole replay', 20_000)
    expect(messagesOf(client, 'big').map((m) => m.offset)).toEqual(Array.from({ length: 2000 }, (_, i) => i + 1))
    // Several pages, each asked with a limit.
    expect(broker.limits.length).toBeGreaterThan(2)
    expect(broker.limits.every((limit) => limit !== undefined && limit <= 2000)).toBe(true)
    // And the connection is live afterwards.
    await server.push.publish('big', 'after')
    await waitFor(() => messagesOf(client, 'big').length === 2001, 'the live message')
    expect(messagesOf(client, 'big').at(-1)?.offset).toBe(2001)
  })

  it('loses nothing published while a paused replay waits, even past the backlog bound', async () => {
    const server = await startPushFixture({ historySize: 5000, maxBufferedBytes: 64 * 1024 })
    const payload = 'q'.repeat(1000)
    for (let i = 1; i <= 500; i++) await server.push.publish('busy', { i, payload })
    const client = await connect(server)
    // The client stops reading before it asks: its replay fills the budget and waits.
    const socket = (client.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket
    client.send({ type: 'subscribe', channel: 'busy', since: 'madeup-1' })
    socket.pause()
    // More live messages than the backlog keeps, while the replay waits.
    for (let i = 501; i <= 1500; i++) await server.push.publish('busy', { i, payload: 'live' })
    socket.resume()
    await waitFor(() => messagesOf(client, 'busy').length >= 1500, 'history and live messages', 20_000)
    expect(messagesOf(client, 'busy').map((m) => m.offset)).toEqual(Array.from({ length: 1500 }, (_, i) => i + 1))
    expect(client.frames.filter((f) => f.type === 'gap')).toEqual([])
  })

  it('says gap when history moves on past a replay that waits, then goes on in order', async () => {
    const broker = new MemoryBroker({ historySize: 50 })
    const hub = new Hub({
      broker,
      heartbeatMs: 60_000,
      heartbeatGraceMs: 10_000,
      maxSubscriptions: 4,
      maxBufferedBytes: 10_000,
      brokerLingerMs: 0,
      logger: { error: () => {} },
    })
    const payload = 's'.repeat(1000)
    for (let i = 1; i <= 50; i++) await broker.publish('rolling', 'message', { i, payload })
    const connection = new StuckConnection(hub.scheduler)
    hub.add(connection)
    // The replay fills half the budget (5,000 bytes) and waits.
    await hub.subscribe(connection, [{ channel: 'rolling', since: { epoch: 'madeup', offset: 1 } }])
    connection.flush()
    connection.unread = 1_000_000
    const early = connection.written.filter((f) => f.frame.type === 'message').length
    expect(early).toBeGreaterThan(0)
    expect(early).toBeLessThan(10)
    // While the client does not read, more is published than the backlog keeps (256) and history
    // (50) rolls over many times. The replay's page in hand still goes out (1..50); then history.
    for (let i = 51; i <= 600; i++) await broker.publish('rolling', 'message', { i, payload })
    connection.unread = 0
    connection.drain()
    for (let turn = 0; turn < 1000 && connection.lastOffset() !== 600; turn++) {
      await new Promise((resolve) => setImmediate(resolve))
      connection.drain()
    }
    let position = 0
    let gaps = 0
    for (const { frame } of connection.written) {
      if (frame.type === 'gap') {
        expect(frame.reason).toBe('history-exhausted')
        expect(frame.offset).toBeGreaterThan(position)
        position = frame.offset
        gaps++
      } else if (frame.type === 'message') {
        expect(frame.offset).toBe(position + 1)
        position = frame.offset
      }
    }
    expect(gaps).toBe(1)
    expect(position).toBe(600)
    await hub.shutdown()
    await broker.close()
  })

  it('answers a poll with at most one answer of a long replay; the next poll goes on from there', async () => {
    const server = await startPushFixture({ historySize: 3000, maxBufferedBytes: 256 * 1024 })
    const payload = 'r'.repeat(1000)
    let epoch = ''
    for (let i = 1; i <= 3000; i++) epoch = (await server.push.publish('long', { i, payload })).epoch
    const offsets: number[] = []
    let cursor = `long=${epoch}-0`
    let session: string | undefined
    for (let round = 0; round < 50 && offsets.length < 3000; round++) {
      const query = `cursor=${encodeURIComponent(cursor)}&hold=0${session ? `&session=${session}` : ''}`
      const res = await fetch(`${server.directUrl}/poll?${query}`)
      const text = await res.text()
      expect(Buffer.byteLength(text)).toBeLessThanOrEqual(256 * 1024 + 2048)
      for (const line of text.split('\n').filter(Boolean)) {
        const frame = JSON.parse(line) as ServerFrame
        if (frame.type === 'hello') session = frame.session
        if (frame.type === 'message') {
          offsets.push(frame.offset)
          cursor = `long=${frame.id}`
        }
      }
    }
    expect(offsets).toEqual(Array.from({ length: 3000 }, (_, i) => i + 1))
  })

  it('encodes a replayed message once for every connection that replays it', async () => {
    const server = await startPushFixture({ historySize: 100 })
    for (let i = 1; i <= 10; i++) await server.push.publish('shared', { i })
    const stringify = JSON.stringify
    let messageFrames = 0
    JSON.stringify = ((value: unknown, ...rest: never[]) => {
      if (typeof value === 'object' && value !== null && (value as { type?: unknown }).type === 'message') messageFrames++
      return stringify(value, ...rest)
    }) as typeof JSON.stringify
    try {
      const clients = await Promise.all(Array.from({ length: 5 }, () => connect(server)))
      for (const client of clients) client.send({ type: 'subscribe', channel: 'shared', since: 'madeup-0' })
      for (const client of clients) await waitFor(() => messagesOf(client, 'shared').length === 10, 'the replay')
    } finally {
      JSON.stringify = stringify
    }
    expect(messageFrames).toBe(10)
  })
})
