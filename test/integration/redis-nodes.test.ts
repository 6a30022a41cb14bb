/**
 * Several pushline nodes on one Redis, each its own process (test/helpers/push-node-process.ts),
 * with real clients: publish on one node and receive on the others, lose a node to kill -9,
 * long-poll through round-robin nginx with every poll on another node.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { PushClient, type GapInfo, type PushError, type PushMessage, type RegisteredTransportName } from '../../src/index.js'
import { startNginx } from '../helpers/nginx.js'
import { startPushNode, type PushNode } from '../helpers/push-nodes.js'
import { sleep, waitFor } from '../helpers/push-fixture.js'
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js'
import { describeWithBinary } from '../helpers/system-binary.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'

const transports: RegisteredTransportName[] = ['websocket', 'sse', 'long-polling']

/** A client subscribed to one channel, recording messages and gaps. */
function subscriber(url: string, transport: RegisteredTransportName, channel: string) {
  const client = new PushClient({ url, transports: [transport], reconnect: { initialDelayMs: 50, maxDelayMs: 500 } })
  const messages: PushMessage[] = []
  const gaps: GapInfo[] = []
  const errors: PushError[] = []
  const states: string[] = []
  client.on('state', (state) => states.push(state))
  let subscribed = false
  const subscription = client.subscribe(channel, (message) => messages.push(message))
  subscription.on('gap', (gap) => gaps.push(gap))
  subscription.on('error', (error) => errors.push(error))
  client.on('error', (error) => errors.push(error))
  subscription.on('subscribed', () => (subscribed = true))
  client.connect()
  return { client, messages, gaps, errors, states, transport, ready: () => waitFor(() => subscribed, `${transport} subscribed`, 15_000) }
}

const dataOf = (messages: PushMessage[]) => messages.map((m) => (m.data as { n: number }).n)
const sequence = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

describeWithBinary('redis-server', 'pushline nodes on Redis, each its own process', () => {
  let redis: RedisServer
  const nodes: PushNode[] = []
  const cleanups: Array<() => Promise<void> | void> = []
  let prefixCount = 0
  let keyPrefix = ''

  beforeAll(async () => {
    redis = await startRedisServer()
  })
  afterAll(async () => {
    await redis?.stop()
  })
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
    await Promise.all(nodes.splice(0).map((node) => node.close()))
  })

  async function startNodes(count: number): Promise<PushNode[]> {
    keyPrefix = `nodes${++prefixCount}:`
    const started = await Promise.all(Array.from({ length: count }, () => startPushNode({ redisUrl: redis.url, keyPrefix })))
    nodes.push(...started)
    return started
  }

  it('publish on node A: clients on B and C, on every transport (short polling too), get every message once, in order', async () => {
    const [a, b, c] = await startNodes(3)
    const clients = [...transports, 'short-polling' as const].flatMap((transport) => [
      subscriber(b!.url, transport, 'feed'),
      subscriber(c!.url, transport, 'feed'),
    ])
    cleanups.push(() => clients.forEach(({ client }) => client.close()))
    await Promise.all(clients.map((s) => s.ready()))
    for (let n = 1; n <= 300; n++) {
      await a!.publish('feed', { n })
      if (n % 50 === 0) await sleep(20)
    }
    for (const s of clients) {
      await waitFor(() => s.messages.length >= 300, `${s.transport} got 300`, 20_000)
    }
    await sleep(300)
    for (const s of clients) {
      expect(dataOf(s.messages), s.transport).toEqual(sequence(1, 300))
      expect(s.gaps, s.transport).toEqual([])
    }
  }, 60_000)

  it("kill -9 a node mid-stream: its clients reconnect to a survivor and lose nothing while the others keep publishing", async () => {
    const [a, b, c] = await startNodes(3)
    // The load balancer: sends new connections to C until C dies, then to B.
    const balancer = await startTcpProxy(c!.port)
    cleanups.push(() => balancer.close())
    const url = `http://127.0.0.1:${balancer.port}/push`
    const clients = transports.map((transport) => subscriber(url, transport, 'kill'))
    cleanups.push(() => clients.forEach(({ client }) => client.close()))
    await Promise.all(clients.map((s) => s.ready()))

    let published = 0
    const publishers = [a!, b!]
    const publishing = (async () => {
      while (published < 600) {
        // Both surviving nodes publish, alternating.
        await publishers[published % 2]!.publish('kill', { n: published + 1 })
        published++
        if (published % 20 === 0) await sleep(10)
      }
    })()
    await waitFor(() => published >= 200 && clients.every((s) => s.messages.length >= 100), 'stream under way', 20_000)
    balancer.retarget(b!.port)
    c!.kill()
    await publishing
    for (const s of clients) {
      await waitFor(() => s.messages.length >= 600, `${s.transport} got 600 after the kill`, 30_000)
    }
    await sleep(300)
    for (const s of clients) {
      expect(dataOf(s.messages), s.transport).toEqual(sequence(1, 600))
      expect(s.gaps, s.transport).toEqual([])
    }
  }, 90_000)

  /** Publishes `{ n }` on `node`, retrying while Redis is away; the failures seen, with how long each took. */
  async function publishThroughOutage(node: PushNode, channel: string, n: number) {
    const failures: Array<{ code: string; ms: number }> = []
    for (;;) {
      const started = Date.now()
      try {
        return { ...(await node.publish(channel, { n })), failures }
      } catch (error) {
        failures.push({ code: (error as { code?: string }).code ?? 'UNKNOWN', ms: Date.now() - started })
        if (failures.length > 400) throw error
        await sleep(50)
      }
    }
  }

  it('Redis restarted empty mid-stream: every client gets one epoch-changed gap, then live messages, nothing twice', async () => {
    const [a, b, c] = await startNodes(3)
    const clients = transports.flatMap((transport) => [subscriber(b!.url, transport, 'reset'), subscriber(c!.url, transport, 'reset')])
    cleanups.push(() => clients.forEach(({ client }) => client.close()))
    await Promise.all(clients.map((s) => s.ready()))
    for (let n = 1; n <= 100; n++) await a!.publish('reset', { n })
    await waitFor(() => clients.every((s) => s.messages.length >= 100), 'first 100', 20_000)
    await redis.stop()
    await redis.start()
    for (let n = 101; n <= 200; n++) await publishThroughOutage(a!, 'reset', n)
    await waitFor(() => clients.every((s) => s.messages.length >= 200), 'all 200', 30_000)
    await sleep(300)
    for (const s of clients) {
      expect(dataOf(s.messages), s.transport).toEqual(sequence(1, 200))
      expect(s.gaps.map((gap) => gap.reason), s.transport).toEqual(['epoch-changed'])
      expect(s.messages[100]?.offset, s.transport).toBe(1)
    }
  }, 90_000)

  it("Redis out of a node's reach for 10 s: its publishes fail fast with BROKER_UNAVAILABLE, its clients stay and then get what other nodes published meanwhile, no gap", async () => {
    keyPrefix = `nodes${++prefixCount}:`
    // Node B reaches Redis through a proxy that the test cuts; node A keeps its own link.
    const link = await startTcpProxy(redis.port)
    cleanups.push(() => link.close())
    const a = await startPushNode({ redisUrl: redis.url, keyPrefix })
    const b = await startPushNode({ redisUrl: `redis://127.0.0.1:${link.port}`, keyPrefix })
    nodes.push(a, b)
    const clients = transports.map((transport) => subscriber(b.url, transport, 'down'))
    cleanups.push(() => clients.forEach(({ client }) => client.close()))
    await Promise.all(clients.map((s) => s.ready()))
    for (let n = 1; n <= 50; n++) await a.publish('down', { n })
    await waitFor(() => clients.every((s) => s.messages.length >= 50), 'first 50', 20_000)

    const requestsBefore = await b.requests()
    for (const s of clients) s.states.length = 0
    link.refuse(true)
    link.cutAll()
    const failures: Array<{ code: string; ms: number }> = []
    const downSince = Date.now()
    let n = 50
    while (Date.now() - downSince < 10_000) {
      // A publishes into Redis meanwhile; B cannot.
      await a.publish('down', { n: ++n })
      const started = Date.now()
      await b.publish('down', { n: -1 }).then(
        () => failures.push({ code: 'PUBLISHED', ms: Date.now() - started }),
        (error: { code?: string }) => failures.push({ code: error.code ?? 'UNKNOWN', ms: Date.now() - started }),
      )
      await sleep(200)
    }
    // A client publishing through the cut node is refused with the same code.
    const websocketClient = clients.find((s) => s.transport === 'websocket')!.client
    await expect(websocketClient.publish('down', { n: -2 })).rejects.toMatchObject({ code: 'BROKER_UNAVAILABLE' })
    expect(failures.length).toBeGreaterThan(10)
    expect(new Set(failures.map((f) => f.code))).toEqual(new Set(['BROKER_UNAVAILABLE']))
    // The bound is commandTimeoutMs (2 s by default); during a known outage they fail at once.
    expect(Math.max(...failures.map((f) => f.ms))).toBeLessThan(2000 + 1000)
    // Polls that find the broker away are told to come back in 1..3 s, not retried in a loop.
    const total = (stats: Record<string, number>) => Object.values(stats).reduce((sum, count) => sum + count, 0)
    expect(total(await b.requests()) - total(requestsBefore)).toBeLessThan(100)
    link.refuse(false)
    const published = n
    await waitFor(() => clients.every((s) => s.messages.length >= published), `all ${published}`, 30_000).catch((error: Error) => {
      const state = clients.map((s) => `${s.transport}: ${s.messages.length} messages, gaps ${JSON.stringify(s.gaps)}, errors ${s.errors.map((e) => e.code).join(',')}`)
      throw new Error(`${error.message}\n${state.join('\n')}`)
    })
    await sleep(300)
    for (const s of clients) {
      expect(dataOf(s.messages), s.transport).toEqual(sequence(1, published))
      expect(s.gaps, s.transport).toEqual([])
    }
    await expect(b.publish('down', { n: published + 1 })).resolves.toMatchObject({ offset: published + 1 })
    // Streaming clients stayed connected throughout (polls come and go by nature).
    for (const s of clients.filter((each) => each.transport !== 'long-polling')) expect(s.states, s.transport).toEqual([])
    console.info(`Redis out of reach 10 s: ${failures.length} publishes on the cut node failed, slowest ${Math.max(...failures.map((f) => f.ms))} ms; ${published - 50} published meanwhile on another node all delivered`)
  }, 90_000)

  describeWithBinary('nginx', 'behind round-robin nginx', () => {
    it(
      'long-polling behind round-robin nginx over 3 nodes: 1,000 messages, polls spread over all nodes, nothing lost or repeated',
      async () => {
        const started = await startNodes(3)
        const nginx = await startNginx(
          started.map((node) => node.port),
          'websocket',
        )
        cleanups.push(() => nginx.stop())
        const s = subscriber(`${nginx.url}/push`, 'long-polling', 'poll')
        cleanups.push(() => s.client.close())
        await s.ready()
        const before = await Promise.all(started.map((node) => node.requests()))
        for (let n = 1; n <= 1000; n++) {
          await started[n % 3]!.publish('poll', { n })
          // Spread publishes over time so the client makes many polls.
          if (n % 10 === 0) await sleep(5)
        }
        await waitFor(() => s.messages.length >= 1000, 'long-poll got 1000', 30_000)
        await sleep(300)
        expect(dataOf(s.messages)).toEqual(sequence(1, 1000))
        expect(s.gaps).toEqual([])
        const after = await Promise.all(started.map((node) => node.requests()))
        const polls = after.map((requests, i) => {
          const count = (stats: Record<string, number>) => Object.entries(stats).reduce((sum, [path, n]) => (path.endsWith('/poll') ? sum + n : sum), 0)
          return count(requests) - count(before[i] ?? {})
        })
        const total = polls.reduce((sum, n) => sum + n, 0)
        expect(total).toBeGreaterThanOrEqual(30)
        // Round robin: every node answered about a third of the polls (no stickiness).
        for (const count of polls) expect(count).toBeGreaterThanOrEqual(Math.floor(total / 3) - 2)
      },
      90_000,
    )
  })
})
