// Scale-out benchmark: publish -> delivery latency with 3 pushline nodes on Redis against 1 node with
// the in-memory broker, in the same run; publishes per second through one node; Redis commands per
// published message.
//
//   npm run build && node bench/redis.js
//   BENCH_CLIENTS=200 BENCH_MESSAGES=3000 node bench/redis.js
//
// Needs Debian's redis-server (apt-get install -y --no-install-recommends redis-server); the bench
// starts its own on a free loopback port with persistence off and kills it (by pid) at the end.
// Every node is a child process (bench/redis-node.js). The WebSocket clients (PushClient) live in this
// process: with Redis they are split over nodes B and C while node A publishes, so every message
// crosses Redis; in memory they share the one node. Latency is measured from the publish call (stamped
// in the publishing process) to the client's message event.

import { fork, spawn } from 'node:child_process'
import net from 'node:net'
import { cpus, loadavg } from 'node:os'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { createClient } from '@redis/client'
import { PushClient } from 'pushline'
import { guardChildren, intFromEnv } from './bench-process.js'

const CLIENTS = intFromEnv('BENCH_CLIENTS', 20, 1, 5000)
const MESSAGES = intFromEnv('BENCH_MESSAGES', 2000, 10, 100_000)
const RATE = intFromEnv('BENCH_RATE', 200, 1, 100_000)
const FLOOD = intFromEnv('BENCH_FLOOD', 20_000, 100, 1_000_000)
const WINDOW = intFromEnv('BENCH_WINDOW', 64, 1, 10_000)
const PHASE_TIMEOUT_MS = 120_000
const NODE_SCRIPT = fileURLToPath(new URL('./redis-node.js', import.meta.url))

const { children, shutdown } = guardChildren('bench', 10 * 60_000)

const now = () => performance.timeOrigin + performance.now()

const ROUNDS = 4

async function main() {
  const [load1] = loadavg()
  console.log(`pushline scale-out bench: ${CLIENTS} clients, ${MESSAGES} messages at ${RATE}/s in ${ROUNDS} alternating rounds, flood ${FLOOD} (window ${WINDOW})`)
  console.log(`${cpus().length} CPUs, load average ${load1.toFixed(2)} (a loaded machine inflates p99 for both setups)`)
  const redis = await startRedis()
  const admin = createClient({ url: redis.url })
  await admin.connect()

  // Both setups run side by side and take turns, so a change in machine load hits both alike.
  const memoryNode = await startNode({})
  const redisNodes = await Promise.all([1, 2, 3].map(() => startNode({ BENCH_REDIS_URL: redis.url })))
  const [a, b, c] = redisNodes
  const setups = [
    { name: '1 node, memory', publisher: memoryNode, clientNodes: [memoryNode], latencies: [] },
    { name: '3 nodes, Redis', publisher: a, clientNodes: [b, c], latencies: [] },
  ]
  for (const setup of setups) setup.audience = await connectClients(setup.clientNodes, setup.latencies)
  const before = await commandCalls(admin)
  for (let round = 0; round < ROUNDS; round++) {
    for (const setup of setups) await paced(setup, Math.ceil(MESSAGES / ROUNDS))
  }
  for (const setup of setups) {
    setup.audience.close()
    const { ms } = await setup.publisher.ask({ type: 'flood', channel: `flood-${Math.random()}`, count: FLOOD, window: WINDOW })
    setup.rate = (FLOOD / ms) * 1000
  }
  const after = await commandCalls(admin)
  await stopNodes([memoryNode, ...redisNodes])
  await admin.close()
  redis.kill()

  const [memory, onRedis] = setups.map((setup) => ({ ...setup, latency: percentiles(setup.latencies) }))
  const signed = (value) => `${value >= 0 ? '+' : ''}${value.toFixed(2)}`
  console.log(`\n| | ${memory.name} | ${onRedis.name} | difference |`)
  console.log('|---|---|---|---|')
  for (const key of ['p50', 'p99', 'max']) {
    const m = memory.latency[key]
    const r = onRedis.latency[key]
    console.log(`| publish -> delivery ${key} | ${m.toFixed(2)} ms | ${r.toFixed(2)} ms | ${signed(r - m)} ms |`)
  }
  console.log(`| publishes/s through one node | ${memory.rate.toFixed(0)} | ${onRedis.rate.toFixed(0)} | x${(onRedis.rate / memory.rate).toFixed(2)} |`)

  const published = Math.ceil(MESSAGES / ROUNDS) * ROUNDS + FLOOD
  const perMessage = [...after.entries()]
    .map(([name, calls]) => [name, calls - (before.get(name) ?? 0)])
    .filter(([name, delta]) => delta > 0 && name !== 'info')
    .sort((x, y) => y[1] - x[1])
  const total = perMessage.reduce((sum, [, delta]) => sum + delta, 0)
  console.log(`\nRedis commands per published message: ${(total / published).toFixed(2)}, in ${(perMessage.find(([name]) => name === 'evalsha')?.[1] / published).toFixed(2)} round trips (${perMessage.map(([name, delta]) => `${name} ${(delta / published).toFixed(2)}`).join(', ')})`)
  shutdown(0)
}

/** Subscribes CLIENTS PushClients, spread over `nodes`, to the bench channel; latencies go to `latencies`. */
async function connectClients(nodes, latencies) {
  const channel = `bench-${Math.random().toString(36).slice(2)}`
  const counter = { received: 0 }
  const clients = []
  for (let i = 0; i < CLIENTS; i++) {
    const node = nodes[i % nodes.length]
    const client = new PushClient({ url: `http://127.0.0.1:${node.port}/push`, transports: ['websocket'] })
    let subscribed = false
    const subscription = client.subscribe(channel, (message) => {
      counter.received++
      latencies.push(now() - message.data.ts)
    })
    subscription.on('subscribed', () => (subscribed = true))
    client.connect()
    clients.push({ client, ready: () => subscribed })
  }
  await until(() => clients.every((c) => c.ready()), 'clients subscribed')
  return { channel, counter, close: () => clients.forEach(({ client }) => client.close()) }
}

async function paced(setup, count) {
  const expected = setup.audience.counter.received + count * CLIENTS
  await setup.publisher.ask({ type: 'paced', channel: setup.audience.channel, count, rate: RATE })
  await until(() => setup.audience.counter.received >= expected, `${setup.name} deliveries`)
}

function percentiles(values) {
  const sorted = [...values].sort((x, y) => x - y)
  const pick = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
  return { p50: pick(0.5), p99: pick(0.99), max: sorted[sorted.length - 1] }
}

async function startNode(env) {
  const child = fork(NODE_SCRIPT, [], { env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  children.add(child)
  const pending = new Map()
  let nextId = 0
  const port = await new Promise((resolve, reject) => {
    child.on('message', (message) => {
      if (message.type === 'listening') resolve(message.port)
      else pending.get(message.id)?.(message)
    })
    child.once('exit', () => reject(new Error('node exited')))
  })
  return {
    port,
    child,
    ask(request) {
      const id = ++nextId
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${request.type} timed out`)), PHASE_TIMEOUT_MS)
        pending.set(id, (reply) => {
          clearTimeout(timer)
          resolve(reply)
        })
        child.send({ ...request, id })
      })
    },
  }
}

async function stopNodes(nodes) {
  for (const { child } of nodes) {
    child.kill('SIGKILL')
    children.delete(child)
  }
}

async function commandCalls(admin) {
  const info = await admin.info('commandstats')
  const calls = new Map()
  for (const match of info.matchAll(/cmdstat_([\w|]+):calls=(\d+)/g)) calls.set(match[1], Number(match[2]))
  return calls
}

async function startRedis() {
  const port = await new Promise((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address()
      probe.close(() => resolve(port))
    })
  })
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  })
  child.on('error', () => {
    console.error('redis-server not found (apt-get install -y --no-install-recommends redis-server)')
    shutdown(2)
  })
  children.add(child)
  await until(
    () =>
      new Promise((resolve) => {
        const socket = net.connect(port, '127.0.0.1')
        socket.once('connect', () => (socket.destroy(), resolve(true)))
        socket.once('error', () => resolve(false))
      }),
    'redis-server',
  )
  return { url: `redis://127.0.0.1:${port}`, kill: () => child.kill('SIGKILL') }
}

async function until(check, what) {
  const started = Date.now()
  while (!(await check())) {
    if (Date.now() - started > PHASE_TIMEOUT_MS) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}


await main()
