/**
 * The misconfiguration most first deployments make: three pushline nodes, each with its own in-memory
 * broker, behind one round-robin URL. A long-polling client lands on another node on every poll, and
 * each node's epoch differs. Without detection every poll replayed the node's whole history (300
 * published messages became 441,261 deliveries in a minute); the nodes must spot the flapping, say
 * once what to fix, and send the client away for a while instead.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { PushClient, type PushError } from '../../src/index.js'
import { startNginx } from '../helpers/nginx.js'
import { startPushNode, type PushNode } from '../helpers/push-nodes.js'
import { sleep, waitFor } from '../helpers/push-fixture.js'
import { describeWithBinary } from '../helpers/system-binary.js'


describeWithBinary('nginx', 'nodes without a shared broker behind round-robin', () => {
  const cleanups: Array<() => Promise<void> | void> = []
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  })

  /**
   * `nodeCount` nodes with 100 messages each on `feed` in their own histories, behind round-robin
   * nginx, and a long-polling client subscribed to `feed` (from `since`, if given). Resolves once it
   * reported EPOCH_FLAPPING.
   */
  async function flappingClient(nodeCount: number, since?: string) {
    const nodes: PushNode[] = await Promise.all(Array.from({ length: nodeCount }, () => startPushNode({})))
    cleanups.push(() => Promise.all(nodes.map((node) => node.close())).then(() => {}))
    for (const node of nodes) for (let n = 1; n <= 100; n++) await node.publish('feed', { n })
    const nginx = await startNginx(
      nodes.map((node) => node.port),
      'websocket',
    )
    cleanups.push(() => nginx.stop())

    const client = new PushClient({ url: `${nginx.url}/push`, transports: ['long-polling'], reconnect: { initialDelayMs: 50, maxDelayMs: 500 } })
    cleanups.push(() => client.close())
    const errors: PushError[] = []
    client.on('error', (error) => errors.push(error))
    const counted = { deliveries: 0 }
    client.subscribe('feed', () => counted.deliveries++, since === undefined ? {} : { since })
    client.connect()

    await waitFor(() => errors.some((error) => error.code === 'EPOCH_FLAPPING'), 'the flapping is reported', 20_000)
    const polls = async () => (await Promise.all(nodes.map((node) => node.requests()))).reduce((sum, requests) => sum + (requests['/push/poll'] ?? 0), 0)
    return { errors, counted, polls, flapping: errors.find((error) => error.code === 'EPOCH_FLAPPING') }
  }

  /** Sent away for 30 s: a few seconds after the report nothing more was polled or replayed. */
  async function expectQuietAfterReport(counted: { deliveries: number }, polls: () => Promise<number>) {
    const deliveredAtReport = counted.deliveries
    const pollsAtReport = await polls()
    await sleep(3000)
    expect(counted.deliveries).toBe(deliveredAtReport)
    expect(await polls()).toBe(pollsAtReport)
  }

  it('a long-polling client is told once what is wrong and backs off instead of replaying history on every poll', async () => {
    const { errors, counted, polls, flapping } = await flappingClient(3, 'e0-0')
    // Told by a node (its close frame) or by the client itself (an epoch came back), whichever saw it first.
    expect(flapping?.message).toMatch(/RedisBroker|pushline\/redis/)
    expect(flapping?.message).toMatch(/sticky sessions/)
    await expectQuietAfterReport(counted, polls)
    // A handful of replays (100 messages each) before the report, not one per poll for a minute.
    expect(counted.deliveries).toBeLessThanOrEqual(1000)
    expect(errors.filter((error) => error.code === 'EPOCH_FLAPPING')).toHaveLength(1)
  }, 60_000)
  it("two nodes: the client sees an epoch come back, reports it once itself and stops replaying, before a node can tell", async () => {
    // Without `since` the first poll is a plain subscribe, so each node sees one foreign-epoch
    // resume by the time the client's third poll brings the first node's epoch back: only the
    // client can tell yet.
    const { errors, counted, polls, flapping } = await flappingClient(2)
    // The client's report names the channel (a node's close frame does not) and the fix.
    expect(flapping?.channel).toBe('feed')
    expect(flapping?.message).toMatch(/pushline\/redis/)
    expect(flapping?.message).toMatch(/sticky sessions/)
    await expectQuietAfterReport(counted, polls)
    // One node's history at most (the second node's, on the client's second poll), never a loop.
    expect(counted.deliveries).toBeLessThanOrEqual(100)
    expect(errors.filter((error) => error.code === 'EPOCH_FLAPPING')).toHaveLength(1)
  }, 60_000)
})
