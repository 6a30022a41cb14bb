/**
 * Presence kept in Redis: pushline nodes, each its own process, count the members of all nodes;
 * a member that leaves on one node is a `leave` on the others; and a node killed with -9 stops
 * counting its members within `presenceTtlMs`, announced as leaves by the surviving nodes.
 */
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest'
import { PushClient, type RegisteredTransportName } from '../../src/index.js'
import { startPushNode, type PushNode } from '../helpers/push-nodes.js'
import { waitFor } from '../helpers/push-fixture.js'
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js'
import { describeWithBinary } from '../helpers/system-binary.js'

const PRESENCE_TTL_MS = 3000

interface PresenceChangeSeen {
  action: string
  id: string
}

/** A client on one node, in `room`, recording the member set and every join and leave it hears. */
function member(node: PushNode, room: string, transport: RegisteredTransportName = 'websocket') {
  const client = new PushClient({ url: node.url, transports: [transport], reconnect: { initialDelayMs: 50, maxDelayMs: 500 } })
  const changes: PresenceChangeSeen[] = []
  const subscription = client.subscribe(room, () => {})
  subscription.on('presence', (frame) => {
    if (frame.action !== 'sync') changes.push({ action: frame.action, id: frame.member.id })
  })
  client.connect()
  return { client, changes, members: () => subscription.presence().map((each) => each.id) }
}

describeWithBinary('redis-server', 'presence in Redis across pushline node processes', () => {
  let redis: RedisServer
  const nodes: PushNode[] = []
  const clients: PushClient[] = []
  let prefixCount = 0

  beforeAll(async () => {
    redis = await startRedisServer()
  })
  afterAll(async () => {
    await redis?.stop()
  })
  afterEach(async () => {
    for (const client of clients.splice(0)) client.close()
    await Promise.all(nodes.splice(0).map((node) => node.close()))
  })

  async function startNodes(count: number): Promise<PushNode[]> {
    const keyPrefix = `presence${++prefixCount}:`
    const started = await Promise.all(
      Array.from({ length: count }, () =>
        startPushNode({ redisUrl: redis.url, keyPrefix, presenceTtlMs: PRESENCE_TTL_MS, presenceGraceMs: 1000 }),
      ),
    )
    nodes.push(...started)
    return started
  }

  function join(node: PushNode, room: string, transport?: RegisteredTransportName) {
    const joined = member(node, room, transport)
    clients.push(joined.client)
    return joined
  }

  it('every node counts the members of all nodes, on every transport, and a leave on one is heard on the others', async () => {
    const [a, b, c] = await startNodes(3)
    const onA = join(a!, 'room:1')
    const onB = join(b!, 'room:1', 'sse')
    const onC = join(c!, 'room:1', 'long-polling')
    for (const each of [onA, onB, onC]) await waitFor(() => each.members().length === 3, 'three members seen', 15_000)
    const ids = onA.members()
    expect(new Set(ids).size).toBe(3)
    for (const each of [onB, onC]) expect([...each.members()].sort()).toEqual([...ids].sort())
    for (const node of [a!, b!, c!]) expect((await node.presence('room:1')).sort()).toEqual([...ids].sort())

    // The member on A leaves: B and C hear one leave of it (after A's grace period), and count two.
    // A client does not know its own member id (its session), so it is the one missing afterwards.
    onA.client.close()
    await waitFor(() => onB.members().length === 2 && onC.members().length === 2, 'the leave reaches B and C', 15_000)
    const [gone] = ids.filter((id) => !onB.members().includes(id))
    expect(gone).toBeDefined()
    for (const each of [onB, onC]) expect(each.changes.filter((change) => change.id === gone)).toContainEqual({ action: 'leave', id: gone })
    for (const each of [onB, onC]) expect(each.changes.filter((change) => change.action === 'leave' && change.id === gone)).toHaveLength(1)
    expect((await c!.presence('room:1')).sort()).toEqual(ids.filter((id) => id !== gone).sort())
  }, 60_000)

  it('a node killed with -9 stops counting its members within presenceTtlMs; the others announce their leave', async () => {
    const [a, b, c] = await startNodes(3)
    const onA1 = join(a!, 'room:2')
    const onA2 = join(a!, 'room:2', 'long-polling')
    const onB = join(b!, 'room:2')
    await waitFor(() => onB.members().length === 3 && onA1.members().length === 3 && onA2.members().length === 3, 'three members', 15_000).catch(
      (error: Error) => {
        throw new Error(`${error.message}; seen ${JSON.stringify([onA1.members(), onA2.members(), onB.members(), onB.changes])}`)
      },
    )
    const before = onB.members()
    expect(new Set(before).size).toBe(3)

    const heardBefore = onB.changes.length
    a!.kill()
    const killedAt = Date.now()
    // Generous bound for a loaded machine; the measured time is printed.
    await waitFor(() => onB.members().length === 1, 'the killed node’s members leave', PRESENCE_TTL_MS * 5)
    const tookMs = Date.now() - killedAt
    console.info(`presence: a node killed with -9 stopped counting after ${tookMs} ms (presenceTtlMs ${PRESENCE_TTL_MS})`)
    const [left] = onB.members()
    const goneIds = before.filter((id) => id !== left)
    expect(goneIds).toHaveLength(2)
    // One leave each, announced by a surviving node (a polling member may have flapped before, if a
    // poll came later than the grace period on this loaded machine: not what is tested here).
    expect(onB.changes.slice(heardBefore).sort((x, y) => (x.id < y.id ? -1 : 1))).toEqual(
      goneIds.sort().map((id) => ({ action: 'leave', id })),
    )
    expect(await c!.presence('room:2')).toEqual([left])
    expect(await b!.presence('room:2')).toEqual([left])
  }, 60_000)
})
