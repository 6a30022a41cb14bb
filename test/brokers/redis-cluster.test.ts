/**
 * RedisBroker on a real Redis Cluster (3 masters started by the test): every key of a channel in one
 * slot, publish scripts routed by the hash tag, sharded pub/sub (SPUBLISH/SSUBSCRIBE) for fan-out.
 */
import { createCluster } from '@redis/client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { StoredMessage } from '../../src/server/brokers/broker.js'
import { RedisBroker } from '../../src/server/brokers/redis/index.js'
import { startRedisCluster, type RedisCluster } from '../helpers/redis-server.js'
import { describeWithBinary } from '../helpers/system-binary.js'
import { registerBrokerTests } from './broker-suite.js'


async function waitFor(condition: () => boolean, timeoutMs = 15_000): Promise<void> {
  const started = Date.now()
  while (!condition()) {
    if (Date.now() - started > timeoutMs) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

describeWithBinary('redis-cli', 'RedisBroker on Redis Cluster', () => {
  let cluster: RedisCluster
  const clients: Array<{ close(): Promise<void> }> = []

  beforeAll(async () => {
    cluster = await startRedisCluster(3)
  }, 60_000)
  afterAll(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close().catch(() => {})))
    await cluster?.stop()
  })

  async function clusterBroker(): Promise<RedisBroker> {
    const client = createCluster({ rootNodes: [...cluster.rootNodes] })
    clients.push(client)
    await client.connect()
    return new RedisBroker({ client, keyPrefix: 'cluster:', logger: { error: () => {} } })
  }

  registerBrokerTests('RedisBroker on Cluster', () => clusterBroker(), { historySize: 1000 })

  it('channels in every slot range: two nodes publish, a third node receives each channel in order', async () => {
    const [a, b, watcher] = await Promise.all([clusterBroker(), clusterBroker(), clusterBroker()])
    try {
      const channels = Array.from({ length: 12 }, (_, i) => `room-${i}`)
      const received = new Map<string, StoredMessage[]>()
      for (const channel of channels) {
        received.set(channel, [])
        await watcher.subscribe(channel, (message) => received.get(channel)!.push(message))
      }
      await Promise.all(
        [a, b].map(async (broker, nodeIndex) => {
          for (let n = 0; n < 20; n++) {
            await Promise.all(channels.map((channel) => broker.publish(channel, 'message', { node: nodeIndex, n })))
          }
        }),
      )
      await waitFor(() => channels.every((channel) => received.get(channel)!.length === 40))
      for (const channel of channels) {
        expect(received.get(channel)!.map((m) => m.offset)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1))
      }
    } finally {
      await Promise.all([a, b, watcher].map((broker) => broker.close()))
    }
  })
})
