// Fan-out benchmark: pushline/server against a minimal `ws` broadcast server, side by side.
//
//   npm run bench                      (builds, then runs this file)
//   BENCH_CLIENTS=500 BENCH_MESSAGES=200 node bench/fanout.js
//
// Each server runs alone in a child process (bench/fanout-server.js) that measures its own CPU time
// and memory; the N WebSocket clients live in this process and are the same raw `ws` clients for
// both servers. See bench/README.md for the method and how to read the output.

import { execFileSync, fork } from 'node:child_process'
import { availableParallelism, cpus, loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import WebSocket from 'ws'

const CLIENTS = intFromEnv('BENCH_CLIENTS', 1000, 1, 20_000)
const MESSAGES = intFromEnv('BENCH_MESSAGES', 500, 1, 100_000)
const BATCH = intFromEnv('BENCH_BATCH', 50, 1, 10_000)
const PACED_RATE = 20 // messages per second
const PACED_SECONDS = 5
const PAD = 'x'.repeat(64) // a small realistic payload next to seq + ts
const CONNECT_CONCURRENCY = 100
const PHASE_TIMEOUT_MS = intFromEnv('BENCH_PHASE_TIMEOUT_MS', 60_000, 1_000, 600_000)
const TOTAL_TIMEOUT_MS = 10 * 60_000
const SERVER_SCRIPT = fileURLToPath(new URL('./fanout-server.js', import.meta.url))
// BENCH_SELF_CHECK=1 runs the baseline against itself: the ratios then show the noise floor.
const SELF_CHECK = process.env.BENCH_SELF_CHECK === '1'
const TARGETS = SELF_CHECK ? ['ws', 'ws'] : ['pushline', 'ws']

/** @type {Set<import('node:child_process').ChildProcess>} */
const children = new Set()

// Stop ourselves whatever happens: kill only the children this script started.
const watchdog = setTimeout(() => {
  console.error(`\nbench: gave up after ${TOTAL_TIMEOUT_MS / 1000} s`)
  shutdown(1)
}, TOTAL_TIMEOUT_MS)
watchdog.unref()
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => shutdown(130))
process.on('uncaughtException', (error) => {
  console.error(error)
  shutdown(1)
})

function shutdown(code) {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL')
  process.exit(code)
}

// ---------------------------------------------------------------------------------------------

async function main() {
  printHeader()
  checkFdLimit()
  const results = []
  for (const kind of TARGETS) {
    console.log(`\n== ${kind === 'pushline' ? 'pushline/server' : 'ws baseline'} ==`)
    results.push(await runTarget(kind))
  }
  printTable(results[0], results[1])
  clearTimeout(watchdog)
}

// ---------------------------------------------------------------------------------------------

async function runTarget(kind) {
  const server = await startServer(kind)
  const sink = new Sink()
  const clients = []
  try {
    const idle0 = (await server.request({ op: 'memory' })).memory

    const connectStart = performance.now()
    for (let i = 0; i < CLIENTS; i += CONNECT_CONCURRENCY) {
      const n = Math.min(CONNECT_CONCURRENCY, CLIENTS - i)
      const batch = await Promise.all(
        Array.from({ length: n }, (_, j) => openClient(kind, server.url, sink, i + j)),
      )
      clients.push(...batch)
    }
    const connectMs = performance.now() - connectStart
    log(`${CLIENTS} clients connected${kind === 'pushline' ? ' and subscribed' : ''} in ${ms(connectMs)}`)
    const negotiated = clients[0].ws.extensions || 'none'

    await sleep(500)
    const idleN = await server.request({ op: 'memory' })
    if (idleN.clients !== CLIENTS) log(`warning: server counts ${idleN.clients} connections, expected ${CLIENTS}`)
    const memory = {
      rss: (idleN.memory.rss - idle0.rss) / CLIENTS,
      heap: (idleN.memory.heapUsed - idle0.heapUsed) / CLIENTS,
      external: (idleN.memory.external - idle0.external) / CLIENTS,
    }
    log(`idle memory per connection: rss ${bytes(memory.rss)}, heap ${bytes(memory.heap)}, external ${bytes(memory.external)}`)

    // Paced: a fixed, low rate, so latency is the cost of one fan-out, not of a queue.
    const pacedCount = PACED_RATE * PACED_SECONDS
    sink.reset('latency')
    await server.request({ op: 'paced', rate: PACED_RATE, count: pacedCount, pad: PAD }, PACED_SECONDS * 1000 + PHASE_TIMEOUT_MS)
    const pacedComplete = await sink.waitFor(CLIENTS * pacedCount, PHASE_TIMEOUT_MS)
    const latency = sink.latencySummary()
    log(
      `paced ${PACED_RATE}/s x ${PACED_SECONDS} s: ${sink.frames}/${CLIENTS * pacedCount} delivered` +
        `, p50 ${ms(latency.p50 / 1000)}, p99 ${ms(latency.p99 / 1000)}, max ${ms(latency.max / 1000)}`,
    )

    // Warm-up burst (not measured), then the measured burst.
    const warm = Math.min(50, MESSAGES)
    sink.reset('count')
    await server.request({ op: 'burst-start', count: warm, batch: BATCH, pad: PAD }, PHASE_TIMEOUT_MS)
    await sink.waitFor(CLIENTS * warm, PHASE_TIMEOUT_MS)
    await server.request({ op: 'burst-stop' })
    await sleep(200)

    // Two measured bursts: BATCH publishes per event-loop turn (servers that batch per turn can
    // join them), and one per turn (nothing to join: the per-message cost of each server).
    const burst = await measureBurst(server, sink, clients, BATCH)
    const single = BATCH === 1 ? burst : await measureBurst(server, sink, clients, 1)

    const stats = kind === 'pushline' ? (await server.request({ op: 'stats' })).stats : null
    if (stats) log(`push.stats(): ${JSON.stringify(stats)}`)

    return { memory, latency, pacedComplete, burst, single, connectMs, negotiated, heartbeatPongs: sink.pongs }
  } finally {
    for (const c of clients) c.ws.terminate()
    await server.close()
  }
}

/** Publishes MESSAGES as fast as the server takes them, `batch` per turn; CPU per delivery. */
async function measureBurst(server, sink, clients, batch) {
  sink.reset('count')
  const burstStart = performance.now()
  await server.request({ op: 'burst-start', count: MESSAGES, batch, pad: PAD }, PHASE_TIMEOUT_MS)
  const complete = await sink.waitFor(CLIENTS * MESSAGES, PHASE_TIMEOUT_MS)
  const wallMs = performance.now() - burstStart
  const { cpu } = await server.request({ op: 'burst-stop' })
  const cpuUs = cpu.user + cpu.system
  const perClient = clients.map((c) => (c.generation === sink.generation ? c.burstCount : 0))
  const burst = {
    deliveries: sink.frames,
    expected: CLIENTS * MESSAGES,
    complete,
    wsMessages: sink.wsMessages,
    cpuUs,
    cpuPerDelivery: cpuUs / Math.max(1, sink.frames),
    wallMs,
    rate: sink.frames / (wallMs / 1000),
    minPerClient: Math.min(...perClient),
    orderErrors: sink.orderErrors,
  }
  log(
    `burst ${MESSAGES} msgs, ${batch} per turn: ${burst.deliveries}/${burst.expected} delivered in ${ms(wallMs)}` +
      ` (${burst.wsMessages} WS messages), server CPU ${ms(cpuUs / 1000)} (user ${ms(cpu.user / 1000)}, sys ${ms(cpu.system / 1000)})`,
  )
  if (!complete) log(`warning: burst incomplete after ${PHASE_TIMEOUT_MS / 1000} s; per-client min ${burst.minPerClient}`)
  if (sink.orderErrors) log(`warning: ${sink.orderErrors} out-of-order deliveries`)
  await sleep(200)
  return burst
}

// ---- server child --------------------------------------------------------------------------

async function startServer(kind) {
  const child = fork(SERVER_SCRIPT, [kind], {
    // BENCH_SERVER_NODE_OPTIONS: extra node flags for both children, e.g. '--cpu-prof --cpu-prof-dir=/tmp/prof'.
    execArgv: ['--expose-gc', ...(process.env.BENCH_SERVER_NODE_OPTIONS ?? '').split(' ').filter(Boolean)],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  children.add(child)
  child.once('exit', () => children.delete(child))

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
  log(`server pid ${ready.pid} listening at ${ready.url}`)

  return {
    url: ready.url,
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
  wsMessages = 0
  pongs = 0
  orderErrors = 0
  generation = 0
  /** @type {number[]} */
  samples = []
  #waiter = null

  reset(mode) {
    this.mode = mode
    this.frames = 0
    this.wsMessages = 0
    this.orderErrors = 0
    this.samples = []
    this.generation++
  }

  deliver(client, data) {
    this.frames++
    if (this.mode === 'latency') this.samples.push(nowUs() - data.ts)
    if (client.generation !== this.generation) {
      client.generation = this.generation
      client.burstCount = 0
      client.lastSeq = -1
    }
    client.burstCount++
    if (data.seq !== client.lastSeq + 1) this.orderErrors++
    client.lastSeq = data.seq
    if (this.#waiter && this.frames >= this.#waiter.target) {
      this.#waiter.resolve(true)
      this.#waiter = null
    }
  }

  /** Resolves true once `target` deliveries arrived, false on timeout. */
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

/**
 * One raw `ws` client. For pushline it speaks protocol v1 (docs/protocol.md section 3.2): offer
 * subprotocol pushline.v1, wait for `hello`, subscribe, answer `ping` with `pong`, and split every
 * WebSocket message on LF because the server batches frames. For the baseline it just parses.
 */
function openClient(kind, url, sink, index) {
  return new Promise((resolve, reject) => {
    const ws = kind === 'pushline' ? new WebSocket(url, 'pushline.v1') : new WebSocket(url)
    const client = { ws, index, burstCount: 0, lastSeq: -1, generation: 0 }
    const fail = (error) => reject(new Error(`client ${index}: ${error.message ?? error}`))
    const timer = setTimeout(() => fail(new Error('not ready in 15 s')), 15_000)
    const ready = () => {
      clearTimeout(timer)
      ws.off('error', fail)
      ws.on('error', () => {}) // errors after setup show up as missing deliveries
      resolve(client)
    }
    ws.once('error', fail)
    ws.once('unexpected-response', (_req, res) => fail(new Error(`HTTP ${res.statusCode}`)))

    if (kind === 'ws') {
      ws.once('open', ready)
      ws.on('message', (raw) => {
        sink.wsMessages++
        const frame = JSON.parse(raw.toString())
        sink.deliver(client, frame.data)
      })
      return
    }

    ws.on('message', (raw) => {
      sink.wsMessages++
      for (const line of raw.toString().split('\n')) {
        const frame = JSON.parse(line)
        switch (frame.type) {
          case 'message':
            sink.deliver(client, frame.data)
            break
          case 'hello':
            ws.send(JSON.stringify({ type: 'subscribe', channel: 'bench', rid: 's' }))
            break
          case 'subscribed':
            ready()
            break
          case 'ping':
            sink.pongs++
            ws.send('{"type":"pong"}')
            break
          case 'error':
            fail(new Error(`${frame.code}: ${frame.message}`))
            break
          default:
            break
        }
      }
    })
  })
}

// ---- output --------------------------------------------------------------------------------

function printHeader() {
  const cpu = cpus()[0]?.model ?? 'unknown CPU'
  console.log(`pushline fan-out benchmark`)
  console.log(
    `${CLIENTS} clients, burst ${MESSAGES} msgs (${BATCH} per turn, then 1 per turn), paced ${PACED_RATE}/s for ${PACED_SECONDS} s, ` +
      `127.0.0.1, Node ${process.version}, ${availableParallelism()} x ${cpu}`,
  )
  const load = loadavg()[0]
  // Clients and server already share the cores; anything else running skews wall-clock figures.
  const busy = load > availableParallelism() * 0.25 ? ' (the machine is busy: wall-clock rates and latencies will be noisy)' : ''
  console.log(`load average (1 min): ${load.toFixed(2)}${busy}`)
}

function checkFdLimit() {
  let limit = NaN
  try {
    limit = Number(execFileSync('/bin/sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim())
  } catch {
    // not a POSIX shell: nothing to check
  }
  // Each process holds one descriptor per connection plus its own handful.
  const needed = CLIENTS + 64
  if (Number.isNaN(limit)) console.log(`fd limit: unknown (could not run \`ulimit -n\`)`)
  else if (limit < needed)
    console.log(
      `fd limit: ${limit} is TOO LOW for ${CLIENTS} clients (each process needs ~${needed}); ` +
        `raise it with \`ulimit -n ${Math.max(needed * 2, 4096)}\` or lower BENCH_CLIENTS. Connections will fail.`,
    )
  else console.log(`fd limit: ${limit} (enough for ${CLIENTS} clients)`)
}

function printTable(ours, base) {
  const b = BATCH
  const rows = [
    [`burst ${b}/turn: server CPU per delivery`, us(ours.burst.cpuPerDelivery), us(base.burst.cpuPerDelivery), ours.burst.cpuPerDelivery / base.burst.cpuPerDelivery, 'lower'],
    [`burst ${b}/turn: deliveries/s (wall)`, num(ours.burst.rate), num(base.burst.rate), ours.burst.rate / base.burst.rate, 'higher'],
    [`burst ${b}/turn: WS messages received`, num(ours.burst.wsMessages), num(base.burst.wsMessages), ours.burst.wsMessages / base.burst.wsMessages, ''],
  ]
  if (ours.single !== ours.burst) {
    rows.push(
      ['burst 1/turn: server CPU per delivery', us(ours.single.cpuPerDelivery), us(base.single.cpuPerDelivery), ours.single.cpuPerDelivery / base.single.cpuPerDelivery, 'lower'],
      ['burst 1/turn: deliveries/s (wall)', num(ours.single.rate), num(base.single.rate), ours.single.rate / base.single.rate, 'higher'],
      ['burst 1/turn: WS messages received', num(ours.single.wsMessages), num(base.single.wsMessages), ours.single.wsMessages / base.single.wsMessages, ''],
    )
  }
  // Memory ratios of near-zero deltas say nothing; show them only above this many bytes.
  const memRatio = (a, c) => (Math.abs(a) >= 256 && Math.abs(c) >= 256 ? a / c : null)
  rows.push(
    ['paced: latency p50', ms(ours.latency.p50 / 1000), ms(base.latency.p50 / 1000), ours.latency.p50 / base.latency.p50, 'lower'],
    ['paced: latency p99', ms(ours.latency.p99 / 1000), ms(base.latency.p99 / 1000), ours.latency.p99 / base.latency.p99, 'lower'],
    ['paced: latency max', ms(ours.latency.max / 1000), ms(base.latency.max / 1000), ours.latency.max / base.latency.max, 'lower'],
    ['idle: RSS per connection', bytes(ours.memory.rss), bytes(base.memory.rss), memRatio(ours.memory.rss, base.memory.rss), 'lower'],
    ['idle: JS heap per connection', bytes(ours.memory.heap), bytes(base.memory.heap), memRatio(ours.memory.heap, base.memory.heap), 'lower'],
    ['idle: external per connection', bytes(ours.memory.external), bytes(base.memory.external), memRatio(ours.memory.external, base.memory.external), 'lower'],
    ['permessage-deflate', ours.negotiated === 'none' ? 'off' : 'on', base.negotiated === 'none' ? 'off' : 'on', null, ''],
  )
  const head = ['', SELF_CHECK ? 'ws (run 1)' : 'pushline', SELF_CHECK ? 'ws (run 2)' : 'ws baseline', 'ours/ws', 'better']
  const table = [head, ...rows.map(([name, a, b, ratio, better]) => [name, a, b, ratio == null || !Number.isFinite(ratio) ? '-' : ratio.toFixed(2), better])]
  const widths = head.map((_, i) => Math.max(...table.map((r) => String(r[i]).length)))
  console.log('\n' + table.map((r) => r.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ')).join('\n'))
  const incomplete = [ours, base].some((r) => !r.burst.complete || !r.single.complete || !r.pacedComplete)
  if (incomplete) console.log('\nWARNING: some deliveries did not arrive in time; the figures above are not comparable.')
  console.log(`\nours/ws: below 1.00 means pushline uses less (CPU, memory, latency) or sends fewer WS messages.`)
}

// ---- small helpers ---------------------------------------------------------------------------

function intFromEnv(name, fallback, min, max) {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value < min || value > max) {
    console.error(`${name} must be an integer in [${min}, ${max}], got ${JSON.stringify(raw)}`)
    process.exit(2)
  }
  return value
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
function us(value) {
  return Number.isFinite(value) ? `${value.toFixed(2)} µs` : 'n/a'
}
function num(value) {
  return Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : 'n/a'
}
function bytes(value) {
  if (!Number.isFinite(value)) return 'n/a'
  return Math.abs(value) >= 1024 ? `${(value / 1024).toFixed(1)} KiB` : `${Math.round(value)} B`
}

// Last, so every class and constant above is initialised before it runs.
await main().catch((error) => {
  console.error(`\nbench failed: ${error?.stack ?? error}`)
  shutdown(1)
})
