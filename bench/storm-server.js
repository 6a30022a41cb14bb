// The server side of bench/reconnect-storm.js: a pushline server in its own process, on the
// port the parent gives (so a restarted server takes over the same address), that records when
// WebSocket upgrades arrive, how many connections it holds over time, and its event loop's
// delay (perf_hooks.monitorEventLoopDelay). Talks to the parent over IPC.
import http from 'node:http'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { createPushServer } from '../dist/server.js'

const port = Number(process.env.STORM_PORT ?? 0)
const options = JSON.parse(process.env.STORM_OPTIONS ?? '{}')
const BUCKET_MS = 250

const loop = monitorEventLoopDelay({ resolution: 10 })
loop.enable()
const startedAt = performance.now()
/** Upgrade requests (accepted or refused) per 250 ms since start. */
const arrivals = []
/** Connections held, sampled every 250 ms. */
const held = []

const push = createPushServer({ logger: { error: () => {} }, ...options })
const server = http.createServer()
let closing = false
server.on('upgrade', (_req, socket) => {
  // Once push.close() has detached, nobody else answers an upgrade: don't leave it hanging.
  if (closing) {
    socket.destroy()
    return
  }
  const bucket = Math.floor((performance.now() - startedAt) / BUCKET_MS)
  arrivals[bucket] = (arrivals[bucket] ?? 0) + 1
})
push.attach(server, { path: '/push' })
const sampler = setInterval(() => held.push(push.stats().connections), BUCKET_MS)

process.on('message', async (message) => {
  if (message.type === 'report') {
    process.send({
      type: 'report',
      bucketMs: BUCKET_MS,
      arrivals: Array.from(arrivals, (count) => count ?? 0),
      held,
      connections: push.stats().connections,
      worstStallMs: loop.max / 1e6,
      p99StallMs: loop.percentile(99) / 1e6,
    })
  } else if (message.type === 'publish') {
    await push.publish(message.channel, message.data)
    process.send({ type: 'published' })
  } else if (message.type === 'close') {
    clearInterval(sampler)
    closing = true
    // Stop accepting first: clients told to come back (retryMs from 0) must find the port closed.
    server.close(() => process.exit(0))
    await push.close()
    server.closeAllConnections()
    setTimeout(() => process.exit(0), 3000).unref()
  }
})
process.on('disconnect', () => process.exit(0))
server.listen(port, '127.0.0.1', () => process.send({ type: 'ready', port: server.address().port }))
