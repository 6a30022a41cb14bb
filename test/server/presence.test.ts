import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest'
import type { PresenceFrame, ServerFrame } from '../../src/protocol/frames.js'
import { MemoryBroker } from '../../src/server/brokers/memory-broker.js'
import { Connection } from '../../src/server/hub/connection.js'
import type { FlushScheduler } from '../../src/server/hub/connection.js'
import { Hub } from '../../src/server/hub/hub.js'
import type { OutFrame } from '../../src/server/hub/out-frame.js'
import type { PushServerOptions } from '../../src/server/index.js'
import { FrameClient, cleanup, startPushFixture, waitFor } from '../helpers/push-fixture.js'
import type { PushFixture } from '../helpers/push-fixture.js'
import { openRawStream, rawPoll } from '../helpers/raw-stream.js'

afterEach(cleanup)

const GRACE_MS = 300

/** Tokens are user ids; channels `room:*` track presence. */
const options: PushServerOptions = {
  authenticate: ({ token }) => (token ? { userId: token } : null),
  presence: (channel) => channel.startsWith('room:'),
  presenceGraceMs: GRACE_MS,
}

const auth = (token: string) => ['pushline.v1', `pushline.auth.${Buffer.from(token).toString('base64url')}`]
const bearer = (token: string) => ({ Authorization: `Bearer ${token}` })
const ids = (frame: ServerFrame) => (frame as Extract<PresenceFrame, { action: 'sync' }>).members.map((member) => member.id)

async function wsMember(server: PushFixture, user: string, channel: string): Promise<FrameClient> {
  const client = await FrameClient.open(server.wsUrl, auth(user))
  await client.nextOf('hello')
  client.send({ type: 'subscribe', rid: 's', channel })
  expect(await client.next()).toMatchObject({ type: 'subscribed', channel })
  return client
}

/** A long-polling client: polls in a loop, as the pushline client does, and keeps every frame. */
function pollingMember(server: PushFixture, user: string, channel: string) {
  const frames: ServerFrame[] = []
  let stopped = false
  let session: string | undefined
  let position = ''
  const loop = (async () => {
    while (!stopped) {
      const cursor = encodeURIComponent(position ? `${channel}=${position}` : channel)
      const query = `cursor=${cursor}&hold=2000${session ? `&session=${session}` : ''}`
      const answer = await rawPoll(`${server.directUrl}/poll?${query}`, bearer(user)).catch((error: unknown) => {
        if (stopped) return { frames: [] }
        throw error
      })
      for (const frame of answer.frames) {
        frames.push(frame)
        if (frame.type === 'hello') session = frame.session
        if (frame.type === 'subscribed') position = `${frame.epoch}-${frame.offset}`
        if (frame.type === 'message') position = frame.id
      }
    }
  })()
  return {
    frames,
    presence: () => frames.filter((frame) => frame.type === 'presence'),
    async stop() {
      stopped = true
      await loop
    },
  }
}

describe('presence across transports', () => {
  it('syncs each new subscriber and sends one join or leave delta to the others, on WebSocket, SSE and long polls', async () => {
    const server = await startPushFixture(options)
    onTestFinished(() => carol?.stop())
    let carol: ReturnType<typeof pollingMember> | undefined
    const room = 'room:1'
    const alice = await wsMember(server, 'alice', room)
    const sync = await alice.next()
    expect(sync).toEqual({ type: 'presence', channel: room, action: 'sync', members: [{ id: 'alice', joinedAt: expect.any(Number) }] })

    const bob = await openRawStream(`${server.directUrl}/sse?cursor=${room}`, bearer('bob'))
    expect(await bob.next()).toMatchObject({ type: 'hello' })
    expect(await bob.next()).toMatchObject({ type: 'subscribed', channel: room })
    expect(ids(await bob.next())).toEqual(['alice', 'bob'])
    expect(await alice.next()).toEqual({ type: 'presence', channel: room, action: 'join', member: { id: 'bob', joinedAt: expect.any(Number) } })

    carol = pollingMember(server, 'carol', room)
    await waitFor(() => carol.presence().length >= 1, 'carol synced')
    expect(ids(carol.presence()[0] as ServerFrame)).toEqual(['alice', 'bob', 'carol'])
    expect(await alice.next()).toMatchObject({ type: 'presence', action: 'join', member: { id: 'carol' } })
    expect(await bob.next()).toMatchObject({ type: 'presence', action: 'join', member: { id: 'carol' } })
    // A poller counts as a connection while a poll is held, and stays a member between polls.
    expect(server.push.presence(room).map(({ id }) => id)).toEqual(['alice', 'bob', 'carol'])

    // Bob goes: a leave once the grace period passed, to the WebSocket and to the poller between its polls.
    bob.close()
    expect(await alice.next(5000)).toMatchObject({ type: 'presence', action: 'leave', member: { id: 'bob' } })
    await waitFor(() => carol.presence().some((frame) => frame.type === 'presence' && frame.action === 'leave'), 'carol hears bob leave')
    // Carol polled again and again meanwhile, but never left: alice heard no leave/join flap of hers.
    expect((await alice.idle(GRACE_MS * 2)).filter((frame) => frame.type === 'presence')).toEqual([])
    await carol.stop()
    expect(await alice.next(5000)).toMatchObject({ type: 'presence', action: 'leave', member: { id: 'carol' } })
    expect(server.push.presence(room).map(({ id }) => id)).toEqual(['alice'])
  })

  it('does not announce a reconnect within the grace period as a leave and a join', async () => {
    const server = await startPushFixture(options)
    const room = 'room:2'
    const watcher = await wsMember(server, 'watcher', room)
    await watcher.next()
    const flaky = await wsMember(server, 'flaky', room)
    expect(await watcher.next()).toMatchObject({ action: 'join', member: { id: 'flaky' } })
    const joinedAt = server.push.presence(room).find((member) => member.id === 'flaky')?.joinedAt
    flaky.ws.terminate()
    await waitFor(() => server.push.stats().connections === 1, 'flaky gone')
    const back = await wsMember(server, 'flaky', room)
    expect(ids(await back.next())).toEqual(['watcher', 'flaky'])
    expect((await watcher.idle(GRACE_MS * 2)).filter((frame) => frame.type === 'presence')).toEqual([])
    expect(server.push.presence(room).find((member) => member.id === 'flaky')).toEqual({ id: 'flaky', connections: 1, joinedAt })

    // Two tabs of one user are one member with two connections; it leaves when both have gone.
    const tab2 = await wsMember(server, 'flaky', room)
    await tab2.next()
    expect(server.push.presence(room).find((member) => member.id === 'flaky')?.connections).toBe(2)
    back.ws.terminate()
    expect((await watcher.idle(GRACE_MS * 2)).filter((frame) => frame.type === 'presence')).toEqual([])
    tab2.ws.terminate()
    expect(await watcher.next(5000)).toMatchObject({ type: 'presence', action: 'leave', member: { id: 'flaky' } })
  })

  it('keeps presence out of channels that do not track it, and out of history', async () => {
    const server = await startPushFixture(options)
    const plain = await wsMember(server, 'a', 'lobby')
    await wsMember(server, 'b', 'lobby')
    expect(await plain.idle(50)).toEqual([])
    const member = await wsMember(server, 'c', 'room:3')
    const sync = await member.next()
    expect(sync.type).toBe('presence')
    await server.push.publish('room:3', 'hello')
    expect(await member.next()).toMatchObject({ type: 'message', offset: 1 })
  })
})

/** A connection that only counts what it is sent: the hub without transports. */
class CountingConnection extends Connection {
  transport: 'websocket' | 'long-polling' = 'websocket'
  frames = 0
  bytes = 0
  readonly kinds: string[] = []

  constructor(scheduler: FlushScheduler, userId: string, session?: string) {
    super(scheduler, session)
    this.identity = { userId }
  }

  protected write(frames: readonly OutFrame[]): void {
    for (const frame of frames) {
      // The hub's heartbeat runs with the fake clock; only what presence costs is counted.
      if (frame.frame.type === 'ping') continue
      this.frames += 1
      this.bytes += Buffer.byteLength(frame.json)
      const action = (frame.frame as { action?: string }).action
      this.kinds.push(action === undefined ? frame.frame.type : `presence:${action}`)
    }
  }

  protected end(): void {}
  bufferedBytes(): number {
    return 0
  }
  isResponsive(): boolean {
    return true
  }
  terminate(): void {}
}

describe('presence at scale', () => {
  it('1,000 members: each join costs every other member one small delta, never the member list', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'setImmediate', 'Date'] })
    try {
      const broker = new MemoryBroker()
      const hub = new Hub({
        broker,
        heartbeatMs: 60_000,
        heartbeatGraceMs: 10_000,
        maxSubscriptions: 16,
        maxBufferedBytes: 1 << 20,
        brokerLingerMs: 0,
        logger: { error: () => {} },
        presence: () => true,
        presenceGraceMs: 5000,
      })
      const members: CountingConnection[] = []
      for (let i = 0; i < 1000; i++) {
        const connection = new CountingConnection(hub.scheduler, `user-${i}`)
        hub.add(connection)
        await hub.subscribe(connection, [{ channel: 'room' }])
        await vi.runOnlyPendingTimersAsync()
        members.push(connection)
      }
      expect(hub.presence('room')).toHaveLength(1000)
      const first = members[0] as CountingConnection
      const last = members[999] as CountingConnection
      // The first member saw 999 joins, one frame each, besides its subscribed and its sync.
      expect(first.kinds.slice(0, 2)).toEqual(['subscribed', 'presence:sync'])
      expect(first.kinds.slice(2)).toEqual(Array(999).fill('presence:join'))
      // Average size, the subscribed and sync included: a delta does not grow with the member count.
      expect(first.bytes / first.frames).toBeLessThan(128)
      // The last one got the list once, in its sync, and nothing else yet.
      expect(last.kinds).toEqual(['subscribed', 'presence:sync'])

      // One more join: exactly one frame to each of the 1,000, of the same small size.
      const before = members.map((member) => [member.frames, member.bytes] as const)
      const newcomer = new CountingConnection(hub.scheduler, 'user-new')
      hub.add(newcomer)
      await hub.subscribe(newcomer, [{ channel: 'room' }])
      await vi.runOnlyPendingTimersAsync()
      const added = members.map((member, i) => [member.frames - (before[i]?.[0] ?? 0), member.bytes - (before[i]?.[1] ?? 0)])
      expect(new Set(added.map(([frames]) => frames))).toEqual(new Set([1]))
      const sizes = new Set(added.map(([, bytes]) => bytes))
      expect(sizes.size).toBe(1)
      expect([...sizes][0]).toBeLessThan(128)
      // The sync the newcomer got carries 1,001 members: the list goes to the joiner alone.
      expect(newcomer.bytes).toBeGreaterThan(1001 * 20)

      // And a leave, after the grace period, one frame each too.
      const beforeLeave = members.map((member) => member.frames)
      hub.remove(newcomer)
      await vi.advanceTimersByTimeAsync(4999)
      expect(members.map((member, i) => member.frames - (beforeLeave[i] ?? 0))).toEqual(Array(1000).fill(0))
      await vi.advanceTimersByTimeAsync(10)
      expect(members.map((member, i) => member.frames - (beforeLeave[i] ?? 0))).toEqual(Array(1000).fill(1))
      expect(first.kinds.at(-1)).toBe('presence:leave')
      const closing = hub.shutdown()
      await vi.advanceTimersByTimeAsync(2000)
      await closing
    } finally {
      vi.useRealTimers()
    }
  })
})

describe('presence for polls', () => {
  it('keeps the deltas a poller missed between two polls for its next poll; past the grace period it syncs', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'setImmediate', 'Date'] })
    try {
      const broker = new MemoryBroker()
      const hub = new Hub({
        broker,
        heartbeatMs: 60_000,
        heartbeatGraceMs: 10_000,
        maxSubscriptions: 16,
        maxBufferedBytes: 1 << 20,
        brokerLingerMs: 0,
        logger: { error: () => {} },
        presence: () => true,
        presenceGraceMs: 1000,
      })
      // Later polls carry the channel's position, as a client's do.
      const { epoch, offset } = await broker.recover('room', undefined)
      const poll = async (continues: boolean) => {
        const connection = new CountingConnection(hub.scheduler, 'poller', 'session-1')
        connection.transport = 'long-polling'
        hub.add(connection)
        await hub.subscribe(connection, [{ channel: 'room', since: continues ? { epoch, offset } : undefined, continues }])
        await vi.advanceTimersByTimeAsync(1)
        hub.remove(connection)
        return connection.kinds.filter((kind) => kind.startsWith('presence'))
      }
      expect(await poll(false)).toEqual(['presence:sync'])
      const other = new CountingConnection(hub.scheduler, 'other')
      hub.add(other)
      await hub.subscribe(other, [{ channel: 'room' }])
      await vi.advanceTimersByTimeAsync(1)
      // The join happened between two polls: the next poll gets it, not the whole list.
      expect(await poll(true)).toEqual(['presence:join'])
      expect(await poll(true)).toEqual([])
      // Away longer than the grace period: the poller had left, and comes back with a sync.
      await vi.advanceTimersByTimeAsync(1500)
      expect(await poll(true)).toEqual(['presence:sync'])
      expect(other.kinds.filter((kind) => kind.startsWith('presence'))).toEqual(['presence:sync', 'presence:leave', 'presence:join'])
      const closing = hub.shutdown()
      await vi.advanceTimersByTimeAsync(2000)
      await closing
    } finally {
      vi.useRealTimers()
    }
  })
})
