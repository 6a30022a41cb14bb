// The benchmark matrix: pushline/server over WebSocket, SSE and long polling, beside plain `ws`,
// `ws` with per-turn batching, Socket.IO (websocket and polling) and a raw SSE server, in one run.
//
//   npm run bench                                     (builds, then runs this file)
//   BENCH_REPEATS=1 BENCH_TARGETS=ws,pushline-websocket node bench/matrix.js
//
// Each server runs alone in a child process (bench/matrix-server.js) that measures its own CPU time
// and memory; the clients live in this process. Every phase has a timeout and the whole run is
// capped, so it stops itself; it kills only the children it started. See bench/README.md.

import { execFileSync, fork } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { Agent, get as httpGet } from 'node:http'
import { connect as tcpConnect } from 'node:net'
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import WebSocket from 'ws'
import { guardChildren, intFromEnv } from './bench-process.js'

const CLIENTS = intFromEnv('BENCH_CLIENTS', 1000, 1, 20_000)
const MESSAGES = intFromEnv('BENCH_MESSAGES', 200, 1, 100_000)
const BATCH = intFromEnv('BENCH_BATCH', 64, 1, 10_000)
const PACED_RATE = intFromEnv('BENCH_RATE', 50, 1, 1000)
const PACED_SECONDS = intFromEnv('BENCH_PACED_SECONDS', 5, 1, 60)
const REPEATS = intFromEnv('BENCH_REPEATS', 2, 1, 5)
const IDLE_CLIENTS = intFromEnv('BENCH_IDLE_CLIENTS', 10_000, 0, 20_000)
// Long enough for one heartbeat round of every server (pushline and Socket.IO: 25 s by default).
const IDLE_SECONDS = intFromEnv('BENCH_IDLE_SECONDS', 26, 1, 120)
const PHASE_TIMEOUT_MS = intFromEnv('BENCH_PHASE_TIMEOUT_MS', 60_000, 1_000, 600_000)
const TOTAL_TIMEOUT_MS = 40 * 60_000
const PAD = 'x'.repeat(64) // a small realistic payload next to seq + ts
const CONNECT_CONCURRENCY = 100
const SERVER_SCRIPT = fileURLToPath(new URL('./matrix-server.js', import.meta.url))
const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url))
// Results go to bench/results/<name>.json and .md: name runs to keep them apart (e.g. before and after a change).
const RESULTS_NAME = /^[\w.-]{1,64}$/.test(process.env.BENCH_RESULTS_NAME ?? '') ? process.env.BENCH_RESULTS_NAME : 'matrix'

/** Every column of the matrix: which server child, and how its clients speak to it. */
const ALL_TARGETS = [
  { id: 'ws', label: 'ws', server: 'ws', client: 'ws' },
  { id: 'ws-batched', label: 'ws batched', server: 'ws-batched', client: 'ws-lines' },
  { id: 'socketio-websocket', label: 'Socket.IO ws', server: 'socketio', client: 'socketio', transport: 'websocket' },
  { id: 'socketio-polling', label: 'Socket.IO polling', server: 'socketio', client: 'socketio', transport: 'polling' },
  { id: 'sse-raw', label: 'raw SSE', server: 'sse-raw', client: 'sse' },
  // The floor under pushline's long-polling; its clients are pushline's poll clients (it answers their first poll alike).
  { id: 'poll-raw', label: 'raw long-poll', server: 'poll-raw', client: 'pushline-poll' },
  { id: 'pushline-websocket', label: 'pushline ws', server: 'pushline', client: 'pushline-websocket' },
  { id: 'pushline-sse', label: 'pushline SSE', server: 'pushline', client: 'pushline-sse' },
  { id: 'pushline-poll', label: 'pushline long-poll', server: 'pushline', client: 'pushline-poll' },
  // Idle phase only: the liveness exchange done the minimal way, at pushline's interval, and the floor under it.
  { id: 'ws-heartbeat', label: 'ws + heartbeat', server: 'ws-heartbeat', client: 'ws', idleOnly: true },
  { id: 'sse-heartbeat', label: 'raw SSE + heartbeat', server: 'sse-heartbeat', client: 'sse', idleOnly: true },
  { id: 'tcp-floor', label: 'TCP floor', server: 'tcp-floor', client: 'tcp', idleOnly: true },
  // The same server, its clients silent: the floor of a heartbeat that is only written (SSE's, which has no pong).
  { id: 'tcp-floor-write', label: 'TCP floor, write only', server: 'tcp-floor', client: 'tcp', silent: true, idleOnly: true },
]
const TARGETS = listFromEnv('BENCH_TARGETS', ALL_TARGETS.map((t) => t.id)).map((id) => {
  const target = ALL_TARGETS.find((t) => t.id === id)
  if (!target) {
    console.error(`BENCH_TARGETS: unknown target ${id} (known: ${ALL_TARGETS.map((t) => t.id).join(', ')})`)
    process.exit(2)
  }
  return target
})
/** The 10k idle phase is long (a heartbeat round each): only the transports that hold a stream open and ping. */
const IDLE_TARGETS = new Set(
  listFromEnv('BENCH_IDLE_TARGETS', [
    'ws',
    'socketio-websocket',
    'sse-raw',
    'pushline-websocket',
    'pushline-sse',
    'ws-heartbeat',
    'sse-heartbeat',
    'tcp-floor',
    'tcp-floor-write',
  ]),
)

// BENCH_HEAP_SNAPSHOT=<n>: instead of the matrix, what n idle connections of each target hold, per connection, by object.
const HEAP_SNAPSHOT_CLIENTS = intFromEnv('BENCH_HEAP_SNAPSHOT', 0, 0, 2_000)

const { children, shutdown } = guardChildren('bench', TOTAL_TIMEOUT_MS)

// BENCH_SERVER_CPUS / BENCH_CLIENT_CPUS (taskset lists, e.g. 0 and 1): the server children on some
// cores and this process (every client) on others, so that a target's clients do not take CPU from
// its server. Unset: both share every core, as the figures in docs/benchmarks.md before this setting.
const SERVER_CPUS = process.env.BENCH_SERVER_CPUS ?? ''
const CLIENT_CPUS = process.env.BENCH_CLIENT_CPUS ?? ''
if (CLIENT_CPUS) pinToCpus(process.pid, CLIENT_CPUS)

/** Pins every thread of process `pid` to `cpus` (Linux `taskset`), or ends the run saying why. */
function pinToCpus(pid, cpus) {
  try {
    execFileSync('taskset', ['--all-tasks', '--cpu-list', '--pid', cpus, String(pid)], { stdio: 'ignore' })
  } catch (error) {
    console.error(`cannot pin process ${pid} to cpus ${cpus} with taskset: ${error.message}`)
    shutdown(2)
  }
}

// Keep-alive sockets for the HTTP clients (SSE, polls): one per client, reused poll after poll.
const agent = new Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 25_000 })

// ---------------------------------------------------------------------------------------------

async function main() {
  if (HEAP_SNAPSHOT_CLIENTS > 0) return heapSnapshots()
  const machine = describeMachine()
  printHeader(machine)
  const runs = []
  for (let repeat = 0; repeat < REPEATS; repeat++) {
    // Every other repeat in reverse order, so drift in the machine's load does not favour one column.
    const order = repeat % 2 === 0 ? TARGETS : [...TARGETS].reverse()
    const results = {}
    for (const target of order) {
      console.log(`\n== repeat ${repeat + 1}/${REPEATS}: ${target.label} ==`)
      results[target.id] = await runTarget(target)
    }
    runs.push({ load: loadavg(), results })
  }
  const report = { machine, command: commandLine(), settings: settings(), runs }
  const table = markdownTable(report)
  console.log('\n' + table)
  mkdirSync(RESULTS_DIR, { recursive: true })
  writeFileSync(`${RESULTS_DIR}${RESULTS_NAME}.json`, JSON.stringify(report, null, 2) + '\n')
  writeFileSync(`${RESULTS_DIR}${RESULTS_NAME}.md`, table + '\n')
  console.log(`\nwritten: bench/results/${RESULTS_NAME}.json, bench/results/${RESULTS_NAME}.md`)
  shutdown(0)
}

// ---------------------------------------------------------------------------------------------

async function runTarget(target) {
  const server = await startServer(target.server)
  const url = clientUrl(target, server.urls)
  const sink = new Sink()
  let clients = []
  const result = { label: target.label }
  if (target.idleOnly) {
    try {
      if (IDLE_CLIENTS > 0 && IDLE_TARGETS.has(target.id)) result.idle = await measureIdle(target, url, server)
    } finally {
      await server.close()
    }
    return result
  }
  try {
    const idle0 = (await server.request({ op: 'memory' })).memory
    const connectStart = performance.now()
    clients = await connectMany(target, url, sink, CLIENTS)
    log(`${CLIENTS} clients ready in ${ms(performance.now() - connectStart)}`)
    await sleep(500)
    const idleN = (await server.request({ op: 'memory' })).memory
    result.memory = perConnection(idle0, idleN, CLIENTS)
    log(`idle per connection: heap+external ${bytes(result.memory.heapExternal)}, rss ${bytes(result.memory.rss)}`)

    // Paced: a fixed rate, so latency is the cost of one fan-out, not of a queue.
    const pacedCount = PACED_RATE * PACED_SECONDS
    sink.reset('latency')
    for (const c of clients) c.answers = 0
    await server.request({ op: 'paced', rate: PACED_RATE, count: pacedCount, pad: PAD }, PACED_SECONDS * 1000 + PHASE_TIMEOUT_MS)
    const pacedComplete = await sink.waitFor(CLIENTS * pacedCount, PHASE_TIMEOUT_MS)
    const latency = sink.latencySummary()
    result.paced = { ...latency, complete: pacedComplete, delivered: sink.frames, expected: CLIENTS * pacedCount }
    if (target.client === 'pushline-poll') {
      // At most one answer per client per coalescing window: with messages 1000/rate ms apart
      // (more than the 5 ms window), that is at most one answer per message.
      const answers = clients.map((c) => c.answers)
      result.paced.pollAnswersPerClientMax = Math.max(...answers)
      result.paced.pollAnswersPerClientMean = answers.reduce((a, b) => a + b, 0) / answers.length
      result.paced.messagesPerClient = pacedCount
    }
    log(
      `paced ${PACED_RATE}/s x ${PACED_SECONDS} s: ${sink.frames}/${CLIENTS * pacedCount}, p50 ${ms(latency.p50 / 1000)}, ` +
        `p99 ${ms(latency.p99 / 1000)}, max ${ms(latency.max / 1000)}` +
        (result.paced.pollAnswersPerClientMax !== undefined
          ? `, poll answers per client: max ${result.paced.pollAnswersPerClientMax}, mean ${result.paced.pollAnswersPerClientMean.toFixed(1)} for ${pacedCount} messages`
          : ''),
    )

    await measureBurst(server, sink, Math.min(50, MESSAGES), BATCH) // warm-up, not kept
    result.burst = await measureBurst(server, sink, MESSAGES, BATCH)
    result.single = await measureBurst(server, sink, MESSAGES, 1)
  } finally {
    for (const c of clients) c.close()
    clients = []
  }

  try {
    if (IDLE_CLIENTS > 0 && IDLE_TARGETS.has(target.id)) result.idle = await measureIdle(target, url, server)
  } finally {
    await server.close()
  }
  return result
}

/** Heap snapshots with none and with HEAP_SNAPSHOT_CLIENTS idle clients, per target: the difference per connection, by object. */
async function heapSnapshots() {
  const n = HEAP_SNAPSHOT_CLIENTS
  const report = {}
  for (const target of TARGETS) {
    const server = await startServer(target.server)
    const url = clientUrl(target, server.urls)
    let clients = []
    try {
      const before = (await server.request({ op: 'heap-classes' })).classes
      clients = await connectMany(target, url, new Sink(), n)
      await sleep(500)
      const after = (await server.request({ op: 'heap-classes' })).classes
      const rows = Object.keys({ ...before, ...after })
        .map((key) => {
          const [c0, b0] = before[key] ?? [0, 0]
          const [c1, b1] = after[key] ?? [0, 0]
          return { key, count: (c1 - c0) / n, bytes: (b1 - b0) / n }
        })
        // Compiled code and object shapes are made once per process while the first clients
        // connect, not per connection: with a few hundred clients they are noise, so left out.
        .filter((row) => Math.abs(row.bytes) >= 8 && !row.key.startsWith('code ') && row.key !== '(object shape)')
        .sort((a, b) => b.bytes - a.bytes)
      const total = rows.reduce((sum, row) => sum + row.bytes, 0)
      report[target.id] = { clients: n, bytesPerConnection: total, rows }
      console.log(`\n== ${target.label}: ${n} idle connections, ${bytes(total)} of heap per connection ==`)
      for (const row of rows.slice(0, 40)) console.log(`  ${row.bytes.toFixed(0).padStart(6)} B  ${row.count.toFixed(2).padStart(6)} x  ${row.key}`)
    } finally {
      for (const c of clients) c.close()
      await server.close()
    }
  }
  mkdirSync(RESULTS_DIR, { recursive: true })
  writeFileSync(`${RESULTS_DIR}${RESULTS_NAME}-heap.json`, JSON.stringify(report, null, 2) + '\n')
  console.log(`\nwritten: bench/results/${RESULTS_NAME}-heap.json`)
  shutdown(0)
}

/** IDLE_CLIENTS idle connections for IDLE_SECONDS: server CPU (heartbeats included) and memory. */
async function measureIdle(target, url, server) {
  await sleep(500)
  const idle0 = (await server.request({ op: 'memory' })).memory
  const sink = new Sink()
  let clients = []
  try {
    const connectStart = performance.now()
    clients = await connectMany(target, url, sink, IDLE_CLIENTS)
    log(`idle: ${IDLE_CLIENTS} clients ready in ${ms(performance.now() - connectStart)}`)
    await sleep(1000)
    const idleN = (await server.request({ op: 'memory' })).memory
    const pings0 = clients.reduce((sum, c) => sum + c.pings, 0)
    await server.request({ op: 'cpu-start' })
    const started = performance.now()
    await sleep(IDLE_SECONDS * 1000)
    const { cpu } = await server.request({ op: 'cpu-stop' })
    const seconds = (performance.now() - started) / 1000
    const pings = clients.reduce((sum, c) => sum + c.pings, 0) - pings0
    const cpuUs = cpu.user + cpu.system
    const idle = {
      clients: IDLE_CLIENTS,
      seconds,
      memory: perConnection(idle0, idleN, IDLE_CLIENTS),
      cpuUs,
      cpuPercent: (cpuUs / 1e6 / seconds) * 100,
      pings,
      rounds: pings / IDLE_CLIENTS,
      // Everything the server did in the window, per ping a client received: the cost of one heartbeat.
      cpuUsPerPing: pings > 0 ? cpuUs / pings : null,
    }
    log(
      `idle ${IDLE_CLIENTS} x ${seconds.toFixed(1)} s: CPU ${ms(cpuUs / 1000)} = ${idle.cpuPercent.toFixed(2)} % of a core, ` +
        `${pings} pings (${idle.rounds.toFixed(2)} rounds), ${idle.cpuUsPerPing === null ? 'no heartbeat' : `${idle.cpuUsPerPing.toFixed(1)} µs per connection per round`}, ` +
        `heap+external ${bytes(idle.memory.heapExternal)}, rss ${bytes(idle.memory.rss)} per connection`,
    )
    return idle
  } finally {
    for (const c of clients) c.close()
  }
}

function perConnection(before, after, n) {
  const heap = (after.heapUsed - before.heapUsed) / n
  const external = (after.external - before.external) / n
  return { heap, external, heapExternal: heap + external, rss: (after.rss - before.rss) / n }
}

/** Publishes `count` messages, `batch` per turn; server CPU per delivery until every client has all of them. */
async function measureBurst(server, sink, count, batch) {
  sink.reset('count')
  const wallStart = performance.now()
  await server.request({ op: 'burst', count, batch, pad: PAD }, PHASE_TIMEOUT_MS)
  const complete = await sink.waitFor(CLIENTS * count, PHASE_TIMEOUT_MS)
  const wallMs = performance.now() - wallStart
  const { cpu } = await server.request({ op: 'cpu-stop' })
  const cpuUs = cpu.user + cpu.system
  const burst = {
    batch,
    count,
    complete,
    delivered: sink.frames,
    expected: CLIENTS * count,
    units: sink.units,
    cpuUs,
    cpuPerDelivery: cpuUs / Math.max(1, sink.frames),
    wallMs,
    orderErrors: sink.orderErrors,
  }
  log(
    `burst ${count} x ${batch}/turn: ${burst.delivered}/${burst.expected} in ${ms(wallMs)}, ${sink.units} wire messages, ` +
      `server CPU ${burst.cpuPerDelivery.toFixed(2)} µs per delivery`,
  )
  if (!complete) log(`warning: burst incomplete after ${PHASE_TIMEOUT_MS / 1000} s`)
  if (sink.orderErrors) log(`warning: ${sink.orderErrors} out-of-order deliveries`)
  await sleep(200)
  return burst
}

// ---- server child --------------------------------------------------------------------------

async function startServer(kind) {
  const child = fork(SERVER_SCRIPT, [kind], {
    // BENCH_SERVER_NODE_OPTIONS: extra node flags for the children, e.g. '--cpu-prof --cpu-prof-dir=/tmp/prof'.
    execArgv: ['--expose-gc', ...(process.env.BENCH_SERVER_NODE_OPTIONS ?? '').split(' ').filter(Boolean)],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  children.add(child)
  child.once('exit', () => children.delete(child))
  if (SERVER_CPUS) pinToCpus(child.pid, SERVER_CPUS)
  const pending = new Map()
  let nextId = 1
  let exited = null
  child.on('message', (message) => {
    const waiter = pending.get(message.re)
    if (!waiter) return
    pending.delete(message.re)
    if (message.error) waiter.reject(new Error(`server child (${kind}): ${message.error}`))
    else waiter.resolve(message)
  })
  child.once('exit', (code, signal) => {
    exited = `exited with ${signal ?? code}`
    for (const waiter of pending.values()) waiter.reject(new Error(`server child (${kind}) ${exited}`))
    pending.clear()
  })
  const ready = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server child (${kind}) did not start in 10 s`)), 10_000)
    child.once('message', (message) => {
      clearTimeout(timer)
      resolve(message)
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`server child (${kind}) exited with ${code} before it was ready`))
    })
  })
  return {
    urls: ready.urls,
    request(body, timeoutMs = PHASE_TIMEOUT_MS) {
      if (exited) return Promise.reject(new Error(`server child (${kind}) ${exited}`))
      const id = nextId++
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id)
          reject(new Error(`server child (${kind}): '${body.op}' timed out after ${timeoutMs} ms`))
        }, timeoutMs)
        pending.set(id, {
          resolve: (v) => (clearTimeout(timer), resolve(v)),
          reject: (e) => (clearTimeout(timer), reject(e)),
        })
        child.send({ ...body, id })
      })
    },
    async close() {
      if (!exited) await this.request({ op: 'close' }, 10_000).catch(() => {})
      await Promise.race([new Promise((resolve) => child.once('exit', resolve)), sleep(2_000)])
      if (child.exitCode === null) child.kill('SIGKILL')
    },
  }
}

// ---- clients -------------------------------------------------------------------------------

/** Counts deliveries across all clients; in latency mode it also keeps every now - ts sample. */
class Sink {
  mode = 'count'
  frames = 0
  /** WebSocket messages, SSE chunks or poll answers: how many wire messages carried the frames. */
  units = 0
  orderErrors = 0
  generation = 0
  /** @type {number[]} */
  samples = []
  #waiter = null

  reset(mode) {
    this.mode = mode
    this.frames = 0
    this.units = 0
    this.orderErrors = 0
    this.samples = []
    this.generation++
  }

  deliver(client, data) {
    this.frames++
    if (this.mode === 'latency') this.samples.push(nowUs() - data.ts)
    if (client.generation !== this.generation) {
      client.generation = this.generation
      client.lastSeq = -1
    }
    if (data.seq !== client.lastSeq + 1) this.orderErrors++
    client.lastSeq = data.seq
    if (this.#waiter && this.frames >= this.#waiter.target) {
      this.#waiter.resolve(true)
      this.#waiter = null
    }
  }

  waitFor(target, timeoutMs) {
    if (this.frames >= target) return Promise.resolve(true)
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiter = null
        resolve(false)
      }, timeoutMs)
      this.#waiter = { target, resolve: (v) => (clearTimeout(timer), resolve(v)) }
    })
  }

  latencySummary() {
    const sorted = Float64Array.from(this.samples).sort()
    const at = (q) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : NaN)
    return { p50: at(0.5), p99: at(0.99), max: sorted.length ? sorted[sorted.length - 1] : NaN, samples: sorted.length }
  }
}

function clientUrl(target, urls) {
  switch (target.client) {
    case 'ws':
    case 'ws-lines':
    case 'pushline-websocket':
      return urls.websocket
    case 'socketio':
      return urls.socketio
    case 'sse':
      return urls.sse
    case 'pushline-sse':
      return `${urls.sse}?cursor=bench`
    case 'pushline-poll':
      return urls.poll
    case 'tcp':
      return urls.tcp
    default:
      throw new Error(`no client for ${target.client}`)
  }
}

async function connectMany(target, url, sink, count) {
  const clients = []
  for (let i = 0; i < count; i += CONNECT_CONCURRENCY) {
    const n = Math.min(CONNECT_CONCURRENCY, count - i)
    clients.push(...(await Promise.all(Array.from({ length: n }, (_, j) => openClient(target, url, sink, i + j)))))
  }
  return clients
}

let lateFailureSeen = false

/** Opens one client; resolves once it is subscribed and will get every later message. */
function openClient(target, url, sink, index) {
  const client = { index, lastSeq: -1, generation: 0, pings: 0, answers: 0, close: () => {} }
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error('not ready in 20 s')), 20_000)
    let settled = false
    function fail(error) {
      if (settled) {
        // After setup a failure shows up as missing deliveries; say why once per run.
        if (!lateFailureSeen) log(`warning: ${target.label} client ${index} failed after setup: ${error?.message ?? error}`)
        lateFailureSeen = true
        return
      }
      settled = true
      clearTimeout(timer)
      client.close()
      reject(new Error(`${target.label} client ${index}: ${error?.message ?? error}`))
    }
    function ready() {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve(client)
    }
    const opener = {
      ws: openWs,
      'ws-lines': openWs,
      'pushline-websocket': openWs,
      socketio: openSocketIo,
      sse: openSse,
      'pushline-sse': openSse,
      'pushline-poll': openPoll,
      tcp: openTcp,
    }
    opener[target.client](target, url, sink, client, ready, fail)
  })
}

/** Protocol v1 frames, as pushline's WebSocket, SSE and poll answers carry them. */
function onPushlineFrame(frame, sink, client, ready, fail) {
  switch (frame.type) {
    case 'message':
      sink.deliver(client, frame.data)
      break
    case 'subscribed':
      ready()
      break
    case 'ping':
      client.pings++
      client.pong?.()
      break
    case 'error':
    case 'close':
      fail(new Error(`${frame.type} ${frame.code}: ${frame.message}`))
      break
    default:
      break
  }
}

function openWs(target, url, sink, client, ready, fail) {
  const pushline = target.client === 'pushline-websocket'
  const ws = pushline ? new WebSocket(url, 'pushline.v1') : new WebSocket(url)
  client.close = () => ws.terminate()
  ws.on('error', fail)
  ws.once('unexpected-response', (_req, res) => fail(new Error(`HTTP ${res.statusCode}`)))
  if (!pushline) {
    ws.once('open', ready)
    // ws answers a ping with a pong by itself (autoPong); the heartbeat peer pings, plain ws never does.
    ws.on('ping', () => client.pings++)
    const lines = target.client === 'ws-lines'
    ws.on('message', (raw) => {
      sink.units++
      if (!lines) return void sink.deliver(client, JSON.parse(raw.toString()).data)
      for (const line of raw.toString().split('\n')) sink.deliver(client, JSON.parse(line).data)
    })
    return
  }
  // docs/protocol.md 3.2: wait for hello, subscribe, answer ping with pong, split messages on LF.
  client.pong = () => ws.send('{"type":"pong"}')
  ws.on('message', (raw) => {
    sink.units++
    for (const line of raw.toString().split('\n')) {
      const frame = JSON.parse(line)
      if (frame.type === 'hello') ws.send(JSON.stringify({ type: 'subscribe', channel: 'bench', rid: 's' }))
      else onPushlineFrame(frame, sink, client, ready, fail)
    }
  })
}

let socketIoClient
async function openSocketIo(target, url, sink, client, ready, fail) {
  socketIoClient ??= (await import('socket.io-client')).io
  const socket = socketIoClient(url, { transports: [target.transport], forceNew: true, reconnection: false })
  client.close = () => socket.disconnect()
  socket.on('connect_error', fail)
  socket.on('connect', ready)
  socket.io.on('ping', () => client.pings++)
  socket.on('tick', (data) => {
    sink.units++
    sink.deliver(client, data)
  })
}

/** An SSE stream read with node:http: events split on a blank line, one `data:` line each. */
function openSse(target, url, sink, client, ready, fail) {
  const pushline = target.client === 'pushline-sse'
  const req = httpGet(url, { agent, headers: { Accept: 'text/event-stream' } }, (res) => {
    if (res.statusCode !== 200) return fail(new Error(`HTTP ${res.statusCode}`))
    if (!pushline) ready()
    res.setEncoding('utf8')
    let buffered = ''
    res.on('data', (chunk) => {
      sink.units++
      buffered += chunk
      let end
      while ((end = buffered.indexOf('\n\n')) !== -1) {
        const event = buffered.slice(0, end)
        buffered = buffered.slice(end + 2)
        for (const line of event.split('\n')) {
          // The heartbeat peer's comment line (a client's EventSource skips it; the connection sees it).
          if (line === ': ping') client.pings++
          if (!line.startsWith('data:')) continue
          const frame = JSON.parse(line.slice(5))
          if (pushline) onPushlineFrame(frame, sink, client, ready, fail)
          else sink.deliver(client, frame.data)
        }
      }
    })
  })
  req.on('error', fail)
  client.close = () => req.destroy()
}

const PONG_BYTES = Buffer.from('pong\n')

/** The floor's client: answers each `ping` line of the TCP floor server with a small reply (unless `silent`). */
function openTcp(target, url, sink, client, ready, fail) {
  const { hostname, port } = new URL(url)
  const socket = tcpConnect({ host: hostname, port: Number(port), noDelay: true }, ready)
  socket.on('error', fail)
  socket.on('data', () => {
    client.pings++
    if (!target.silent) socket.write(PONG_BYTES)
  })
  client.close = () => socket.destroy()
}

/**
 * A long-polling client as docs/protocol.md 3.5 describes it: poll, read the NDJSON answer, poll again
 * with the new position. It speaks HTTP/1.1 itself over one keep-alive socket: node:http's client cost
 * more CPU per poll than the server's answer (about 105 against 80 µs here), and with all the clients
 * in this one process it, not the server, set the length of a round of polls. The server answers a
 * poll with `Content-Length` (200) or no body (204), never chunked.
 */
function openPoll(target, url, sink, client, ready, fail) {
  const { hostname, port, pathname } = new URL(url)
  let session = null
  let position = null
  let closed = false
  let socket = null
  /** Bytes of the answer being read (they may come in several reads, or with the next answer's). */
  let received = Buffer.alloc(0)
  client.close = () => {
    closed = true
    socket?.destroy()
  }
  const open = () => {
    received = Buffer.alloc(0)
    socket = tcpConnect({ host: hostname, port: Number(port), noDelay: true }, poll)
    socket.on('data', read)
    socket.on('error', (error) => {
      if (!closed) fail(error)
    })
    // A keep-alive socket the server closed: poll again on a new one (the position says where from).
    socket.on('close', (hadError) => {
      if (!closed && !hadError) open()
    })
  }
  const poll = () => {
    if (closed) return
    const cursor = position ? `bench=${position}` : 'bench'
    const query = session ? `?cursor=${cursor}&session=${session}` : `?cursor=${cursor}`
    socket.write(`GET ${pathname}${query} HTTP/1.1\r\nHost: ${hostname}:${port}\r\n\r\n`)
  }
  const read = (chunk) => {
    received = received.length === 0 ? chunk : Buffer.concat([received, chunk])
    const headEnd = received.indexOf('\r\n\r\n')
    if (headEnd === -1) return
    const head = received.toString('latin1', 0, headEnd)
    if (/\r\ntransfer-encoding:/i.test(head)) return fail(new Error('a chunked poll answer'))
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0)
    const end = headEnd + 4 + length
    if (received.length < end) return
    const status = Number(head.slice(9, 12))
    const body = received.toString('utf8', headEnd + 4, end)
    // One poll at a time: nothing follows an answer until the next poll is sent.
    received = Buffer.alloc(0)
    if (status === 204) return poll()
    if (status !== 200) return fail(new Error(`HTTP ${status}: ${body}`))
    sink.units++
    client.answers++
    for (const line of body.split('\n')) {
      if (line === '') continue
      const frame = JSON.parse(line)
      if (frame.type === 'hello') session = frame.session
      if (frame.type === 'subscribed') position = `${frame.epoch}-${frame.offset}`
      if (frame.type === 'message') position = frame.id
      onPushlineFrame(frame, sink, client, ready, fail)
    }
    poll()
  }
  open()
}

// ---- output --------------------------------------------------------------------------------

function describeMachine() {
  return {
    cpu: cpus()[0]?.model ?? 'unknown CPU',
    cores: availableParallelism(),
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    loadAtStart: loadavg(),
    date: new Date().toISOString(),
    fdLimit: fdLimit(),
  }
}

function printHeader(machine) {
  console.log('pushline benchmark matrix')
  console.log(`${machine.cores} x ${machine.cpu}, ${machine.memoryGiB} GiB, Node ${machine.node}, fd limit ${machine.fdLimit}`)
  console.log(`load average at start: ${machine.loadAtStart.map((l) => l.toFixed(2)).join(' ')}`)
  console.log(`settings: ${JSON.stringify(settings())}`)
  const needed = Math.max(CLIENTS, IDLE_CLIENTS) + 256
  if (Number.isFinite(machine.fdLimit) && machine.fdLimit < needed)
    console.log(`fd limit ${machine.fdLimit} is TOO LOW: raise it with \`ulimit -n ${needed * 2}\` or lower BENCH_CLIENTS / BENCH_IDLE_CLIENTS`)
}

function settings() {
  return {
    clients: CLIENTS,
    messages: MESSAGES,
    batch: BATCH,
    pacedRate: PACED_RATE,
    pacedSeconds: PACED_SECONDS,
    repeats: REPEATS,
    idleClients: IDLE_CLIENTS,
    idleSeconds: IDLE_SECONDS,
    targets: TARGETS.map((t) => t.id),
    serverCpus: SERVER_CPUS || 'all',
    clientCpus: CLIENT_CPUS || 'all',
  }
}

function commandLine() {
  const env = Object.entries(process.env)
    .filter(([key]) => key.startsWith('BENCH_'))
    .map(([key, value]) => `${key}=${value} `)
    .join('')
  return `${env}node bench/matrix.js`
}

function fdLimit() {
  try {
    return Number(execFileSync('/bin/sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim())
  } catch {
    return NaN
  }
}

/** The markdown table: one column per target, `min–max` over the repeats, and the ratios that the goals name. */
function markdownTable(report) {
  const ids = TARGETS.map((t) => t.id)
  const pick = (id, read) =>
    report.runs.map((run) => (run.results[id] ? read(run.results[id]) : undefined)).filter((v) => v !== undefined && v !== null && Number.isFinite(v))
  const range = (values, format) => {
    if (values.length === 0) return '–'
    const lo = Math.min(...values)
    const hi = Math.max(...values)
    return lo === hi || format(lo) === format(hi) ? format(lo) : `${format(lo)}–${format(hi)}`
  }
  const rows = [
    ['burst 64/turn: server CPU µs per delivery', (r) => r.burst?.cpuPerDelivery, (v) => v.toFixed(2)],
    ['burst 1/turn: server CPU µs per delivery', (r) => r.single?.cpuPerDelivery, (v) => v.toFixed(2)],
    // Per write or poll answer: for long-polling, what one poll costs the server.
    ['burst 1/turn: server CPU µs per wire message', (r) => r.single?.cpuUs / r.single?.units, (v) => v.toFixed(1)],
    [`paced ${PACED_RATE}/s: p50 ms`, (r) => r.paced?.p50 / 1000, (v) => v.toFixed(1)],
    [`paced ${PACED_RATE}/s: p99 ms`, (r) => r.paced?.p99 / 1000, (v) => v.toFixed(1)],
    [`idle (N=${CLIENTS}): heap+external KiB per connection`, (r) => r.memory?.heapExternal / 1024, (v) => v.toFixed(1)],
    [`idle (N=${CLIENTS}): RSS KiB per connection`, (r) => r.memory?.rss / 1024, (v) => v.toFixed(1)],
    [`idle (N=${IDLE_CLIENTS}): heap+external KiB per connection`, (r) => r.idle?.memory.heapExternal / 1024, (v) => v.toFixed(1)],
    [`idle (N=${IDLE_CLIENTS}): server CPU % of one core`, (r) => r.idle?.cpuPercent, (v) => v.toFixed(2)],
    [`idle (N=${IDLE_CLIENTS}): µs per connection per heartbeat round`, (r) => r.idle?.cpuUsPerPing, (v) => v.toFixed(1)],
  ]
  const labels = TARGETS.map((t) => t.label)
  const lines = [`| | ${labels.join(' | ')} |`, `|---|${labels.map(() => '---:').join('|')}|`]
  for (const [name, read, format] of rows) lines.push(`| ${name} | ${ids.map((id) => range(pick(id, read), format)).join(' | ')} |`)

  // Ratios in the same repeat, then their range over the repeats.
  const ratio = (a, b, read) =>
    report.runs
      .map((run) => {
        const x = run.results[a] && read(run.results[a])
        const y = run.results[b] && read(run.results[b])
        return Number.isFinite(x) && Number.isFinite(y) && y !== 0 ? x / y : undefined
      })
      .filter((v) => v !== undefined)
  const ratios = [
    ['pushline ws / ws: idle heap+external', 'pushline-websocket', 'ws', (r) => r.memory?.heapExternal, '≤ 1.1'],
    ['pushline SSE / raw SSE: idle heap+external', 'pushline-sse', 'sse-raw', (r) => r.memory?.heapExternal, '≤ 1.0'],
    ['pushline SSE / raw SSE: burst 1/turn CPU', 'pushline-sse', 'sse-raw', (r) => r.single?.cpuPerDelivery, '≤ 1.0'],
    ['pushline ws / ws: burst 1/turn CPU', 'pushline-websocket', 'ws', (r) => r.single?.cpuPerDelivery, ''],
    ['pushline long-poll / raw long-poll: CPU per poll answer (burst 1/turn)', 'pushline-poll', 'poll-raw', (r) => r.single?.cpuUs / r.single?.units, ''],
    ['pushline long-poll / raw long-poll: paced p99', 'pushline-poll', 'poll-raw', (r) => r.paced?.p99, ''],
    ['pushline ws / ws batched: burst 64/turn CPU', 'pushline-websocket', 'ws-batched', (r) => r.burst?.cpuPerDelivery, ''],
    ['pushline ws / Socket.IO ws: burst 64/turn CPU', 'pushline-websocket', 'socketio-websocket', (r) => r.burst?.cpuPerDelivery, ''],
    ['pushline long-poll / pushline SSE: paced p99', 'pushline-poll', 'pushline-sse', (r) => r.paced?.p99, '≤ 2'],
    ['pushline long-poll / Socket.IO polling: paced p99', 'pushline-poll', 'socketio-polling', (r) => r.paced?.p99, ''],
    ['pushline ws / ws + heartbeat: µs per connection per heartbeat round', 'pushline-websocket', 'ws-heartbeat', (r) => r.idle?.cpuUsPerPing, ''],
    ['pushline SSE / raw SSE + heartbeat: µs per connection per heartbeat round', 'pushline-sse', 'sse-heartbeat', (r) => r.idle?.cpuUsPerPing, ''],
    ['pushline ws / TCP floor: µs per connection per heartbeat round', 'pushline-websocket', 'tcp-floor', (r) => r.idle?.cpuUsPerPing, ''],
    ['ws + heartbeat / TCP floor: µs per connection per heartbeat round', 'ws-heartbeat', 'tcp-floor', (r) => r.idle?.cpuUsPerPing, ''],
    ['pushline SSE / TCP floor, write only: µs per connection per heartbeat round', 'pushline-sse', 'tcp-floor-write', (r) => r.idle?.cpuUsPerPing, ''],
    ['raw SSE + heartbeat / TCP floor, write only: µs per connection per heartbeat round', 'sse-heartbeat', 'tcp-floor-write', (r) => r.idle?.cpuUsPerPing, ''],
  ]
  lines.push('', '| ratio in the same repeat | range | goal |', '|---|---:|---|')
  for (const [name, a, b, read, goal] of ratios) {
    if (!ids.includes(a) || !ids.includes(b)) continue
    lines.push(`| ${name} | ${range(ratio(a, b, read), (v) => v.toFixed(2))} | ${goal} |`)
  }
  const poll = pick('pushline-poll', (r) => r.paced?.pollAnswersPerClientMax)
  if (poll.length) lines.push('', `Long-polling: at most ${Math.max(...poll)} answers per client for ${PACED_RATE * PACED_SECONDS} messages published ${1000 / PACED_RATE} ms apart.`)
  const incomplete = report.runs.flatMap((run) =>
    Object.entries(run.results)
      // Idle-only targets (the heartbeat peers) have no delivery phases.
      .filter(([, r]) => r.paced && (!r.paced.complete || !r.burst?.complete || !r.single?.complete))
      .map(([id]) => id),
  )
  if (incomplete.length) lines.push('', `Incomplete deliveries (not comparable): ${[...new Set(incomplete)].join(', ')}.`)
  return lines.join('\n')
}

// ---- small helpers ---------------------------------------------------------------------------


function listFromEnv(name, fallback) {
  const raw = process.env[name]
  return raw ? raw.split(',').map((s) => s.trim()).filter(Boolean) : fallback
}

/** Microseconds on CLOCK_MONOTONIC, shared with the server child (Linux). */
function nowUs() {
  return Number(process.hrtime.bigint() / 1000n)
}

function log(text) {
  console.log(`  ${text}`)
}
function ms(value) {
  return Number.isFinite(value) ? `${value < 10 ? value.toFixed(2) : value.toFixed(0)} ms` : 'n/a'
}
function bytes(value) {
  if (!Number.isFinite(value)) return 'n/a'
  return Math.abs(value) >= 1024 ? `${(value / 1024).toFixed(1)} KiB` : `${Math.round(value)} B`
}

await main().catch((error) => {
  console.error(`\nbench failed: ${error?.stack ?? error}`)
  shutdown(1)
})
