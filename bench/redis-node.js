// Child process of bench/redis.js: one pushline node, with a RedisBroker when BENCH_REDIS_URL is set
// and the default in-memory broker otherwise. It reports its port over IPC, then publishes what the
// parent asks, stamping each message with the time of the publish call, so that the parent can
// measure publish -> delivery. It listens on 127.0.0.1 only and exits when the IPC channel closes.

import { createServer } from 'node:http'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { createPushServer } from 'pushline/server'

if (typeof process.send !== 'function') {
  console.error('redis-node.js is started by bench/redis.js (it needs an IPC channel)')
  process.exit(2)
}

const redisUrl = process.env.BENCH_REDIS_URL
let broker
if (redisUrl) {
  const { RedisBroker } = await import('pushline/redis')
  broker = new RedisBroker({ url: redisUrl, keyPrefix: process.env.BENCH_KEY_PREFIX ?? 'bench:' })
}
const push = createPushServer({ broker, heartbeatMs: 20_000 })
const server = createServer()
push.attach(server, { path: '/push' })
server.listen(0, '127.0.0.1', () => process.send({ type: 'listening', port: server.address().port }))

/** Wall-clock ms with sub-ms resolution, comparable across processes on one machine. */
const now = () => performance.timeOrigin + performance.now()

process.on('message', async (request) => {
  if (request.type === 'paced') {
    // `count` messages at `rate` per second, each stamped at its publish call.
    const intervalMs = 1000 / request.rate
    const started = now()
    for (let i = 0; i < request.count; i++) {
      const due = started + i * intervalMs
      const wait = due - now()
      if (wait > 1) await sleep(wait)
      await push.publish(request.channel, { seq: i, ts: now() })
    }
    process.send({ type: 'done', id: request.id })
  } else if (request.type === 'flood') {
    // As fast as the broker takes them, `window` publishes in flight.
    const started = now()
    let next = 0
    const worker = async () => {
      while (next < request.count) {
        const seq = next++
        await push.publish(request.channel, { seq, ts: now() })
      }
    }
    await Promise.all(Array.from({ length: request.window }, worker))
    process.send({ type: 'done', id: request.id, ms: now() - started })
  }
})
process.on('disconnect', () => process.exit(0))
