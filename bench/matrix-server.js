// Child process of bench/matrix.js: runs ONE server under test and measures it from the inside.
//
//   node --expose-gc bench/matrix-server.js <server>
//
// <server> is one of SERVERS below. The parent drives it over IPC; the child reports its own CPU time
// (process.cpuUsage, user + system) and memory, because only the process that does the work can
// measure it without counting the clients too. It listens on 127.0.0.1 only, and exits when the
// parent says so or the IPC channel closes.

import { createServer } from 'node:http'
import { createServer as createTcpServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { pathToFileURL } from 'node:url'
import { getHeapSnapshot } from 'node:v8'
import { WebSocketServer } from 'ws'

const SERVERS = ['ws', 'ws-batched', 'socketio', 'sse-raw', 'poll-raw', 'pushline', 'ws-heartbeat', 'sse-heartbeat', 'tcp-floor']
const kind = process.argv[2]
if (!SERVERS.includes(kind)) {
  console.error(`usage: node --expose-gc bench/matrix-server.js ${SERVERS.join('|')}`)
  process.exit(2)
}
if (typeof process.send !== 'function' || typeof globalThis.gc !== 'function') {
  console.error('matrix-server.js is started by bench/matrix.js (it needs an IPC channel and --expose-gc)')
  process.exit(2)
}

const CHANNEL = 'bench'
const EVENT = 'tick'
/**
 * The heartbeat peers ping as often as pushline does in the same run: BENCH_PUSHLINE_HEARTBEAT_MS,
 * else pushline's default `heartbeatMs` (src/server/push-server.ts).
 */
const HEARTBEAT_MS = Number(process.env.BENCH_PUSHLINE_HEARTBEAT_MS) || 25_000
/** pushline's default `heartbeatGraceMs`: how long past a missed pong the ws peer keeps a client. */
const HEARTBEAT_GRACE_MS = 10_000

/**
 * @typedef {{ urls: Record<string, string>, publish: (data: unknown) => Promise<void> | void, close: () => Promise<void> }} Target
 */

/** The frame the peers send: the same shape and about the same size as a pushline `message` frame. */
function peerFrame(data, offset) {
  return JSON.stringify({ type: 'message', channel: CHANNEL, event: EVENT, data, offset, id: `bench-${offset}` })
}

async function startPushline() {
  let mod
  try {
    // BENCH_PUSHLINE_DIST: another build's dist/ (e.g. `npx tsup --out-dir /tmp/other`), to compare two builds.
    const dist = process.env.BENCH_PUSHLINE_DIST
    mod = await import(dist ? pathToFileURL(`${dist}/server.js`).href : 'pushline/server')
  } catch (error) {
    throw new Error(`cannot import 'pushline/server' (run \`npm run build\` first): ${error.message}`)
  }
  // Defaults (heartbeat 25 s unless BENCH_PUSHLINE_HEARTBEAT_MS, history 1000) except the connection and subscribe-rate limits, which would refuse a
  // benchmark's thousands of loopback clients from one address.
  const heartbeatMs = Number(process.env.BENCH_PUSHLINE_HEARTBEAT_MS) || undefined
  const push = mod.createPushServer({
    heartbeatMs,
    maxConnections: 100_000,
    maxConnectionsPerIp: 100_000,
    maxConnectsPerSecond: 100_000,
    // SSE and poll requests are charged as subscribes per client address: every bench client shares 127.0.0.1.
    maxSubscribesPerSecond: 100_000,
  })
  const http = createServer()
  push.attach(http, { path: '/push' })
  await listen(http)
  const base = `127.0.0.1:${http.address().port}/push`
  return {
    urls: { websocket: `ws://${base}/ws`, sse: `http://${base}/sse`, poll: `http://${base}/poll` },
    publish: async (data) => {
      await push.publish(CHANNEL, data, { event: EVENT })
    },
    close: async () => {
      await push.close()
      http.closeAllConnections?.()
      await new Promise((resolve) => http.close(() => resolve()))
    },
  }
}

/** The least a broadcast server can do with `ws`: one JSON.stringify and one `send` per client per message. */
async function startWs() {
  const http = createServer()
  const wss = new WebSocketServer({ server: http, path: '/ws' })
  await listen(http)
  let offset = 0
  return {
    urls: { websocket: `ws://127.0.0.1:${http.address().port}/ws` },
    publish: (data) => {
      const text = peerFrame(data, ++offset)
      for (const client of wss.clients) client.send(text)
    },
    close: () => closeWs(wss, http),
  }
}

/** `ws` with the batching pushline does: the frames of one event-loop turn go out joined by LF in one send. */
async function startWsBatched() {
  const http = createServer()
  const wss = new WebSocketServer({ server: http, path: '/ws' })
  await listen(http)
  let offset = 0
  let pending = []
  const flush = () => {
    const text = pending.join('\n')
    pending = []
    for (const client of wss.clients) client.send(text)
  }
  return {
    urls: { websocket: `ws://127.0.0.1:${http.address().port}/ws` },
    publish: (data) => {
      if (pending.length === 0) setImmediate(flush)
      pending.push(peerFrame(data, ++offset))
    },
    close: () => closeWs(wss, http),
  }
}

async function closeWs(wss, http) {
  for (const client of wss.clients) client.terminate()
  await new Promise((resolve) => wss.close(() => resolve()))
  http.closeAllConnections?.()
  await new Promise((resolve) => http.close(() => resolve()))
}

/** Socket.IO 4 with its defaults (heartbeat 25 s), every client in one room. */
async function startSocketIo() {
  const { Server } = await import('socket.io')
  const http = createServer()
  const io = new Server(http, { serveClient: false })
  io.on('connection', (socket) => socket.join(CHANNEL))
  await listen(http)
  return {
    urls: { socketio: `http://127.0.0.1:${http.address().port}` },
    publish: (data) => {
      io.to(CHANNEL).emit(EVENT, data)
    },
    close: async () => {
      io.disconnectSockets(true)
      await new Promise((resolve) => io.close(() => resolve()))
      http.closeAllConnections?.()
    },
  }
}

/** An SSE server on `node:http` that keeps its open responses, for the raw SSE peers. */
async function startSseStreams() {
  const streams = new Set()
  const http = createServer((req, res) => {
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      Connection: 'keep-alive',
    })
    res.write(': ok\n\n')
    streams.add(res)
    res.on('close', () => streams.delete(res))
  })
  await listen(http)
  return {
    streams,
    url: `http://127.0.0.1:${http.address().port}/sse`,
    close: async () => {
      for (const res of streams) res.destroy()
      http.closeAllConnections?.()
      await new Promise((resolve) => http.close(() => resolve()))
    },
  }
}

/** A raw SSE server: one `data:` event per message, written to every open response. No history, no heartbeat. */
async function startSseRaw() {
  const { streams, url, close } = await startSseStreams()
  let offset = 0
  return {
    urls: { sse: url },
    publish: (data) => {
      const text = `data: ${peerFrame(data, ++offset)}\n\n`
      for (const res of streams) res.write(text)
    },
    close,
  }
}

/**
 * A minimal long-polling server on `node:http`, the floor under pushline's: a poll whose cursor
 * names an offset is answered at once with the messages after it (NDJSON, the peers' frame), or held
 * until the next publish or for 25 s (then 204), with a timer per held poll. The first poll (a cursor
 * without a position) is answered with `hello` and `subscribed`, as pushline answers it, so that the
 * bench's poll client reads both. No coalescing window, sessions, limits or epochs.
 */
async function startPollRaw() {
  const HISTORY_SIZE = 1000
  const HOLD_MS = 25_000
  /** The newest frames (JSON lines); frame n is at `history[n - 1 - dropped]`. */
  const history = []
  let dropped = 0
  let offset = 0
  /** Held polls and the offset each has read up to. */
  const held = new Map()
  const answer = (res, lines) => {
    const body = `${lines.join('\n')}\n`
    res.writeHead(200, { 'Content-Type': 'application/x-ndjson', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' })
    res.end(body)
  }
  const linesAfter = (after) => history.slice(Math.max(0, after - dropped))
  const http = createServer((req, res) => {
    const cursor = new URL(req.url, 'http://bench').searchParams.get('cursor') ?? ''
    if (!cursor.includes('=')) {
      const hello = JSON.stringify({ type: 'hello', session: 'raw' })
      return answer(res, [hello, JSON.stringify({ type: 'subscribed', channel: CHANNEL, epoch: 'raw', offset })])
    }
    const after = Number(cursor.slice(cursor.lastIndexOf('-') + 1))
    if (after < offset) return answer(res, linesAfter(after))
    const timer = setTimeout(() => {
      held.delete(res)
      res.writeHead(204, { 'Cache-Control': 'no-store' })
      res.end()
    }, HOLD_MS)
    held.set(res, { after, timer })
    res.on('close', () => {
      clearTimeout(timer)
      held.delete(res)
    })
  })
  await listen(http)
  return {
    urls: { poll: `http://127.0.0.1:${http.address().port}/poll` },
    publish: (data) => {
      history.push(peerFrame(data, ++offset))
      if (history.length > HISTORY_SIZE) {
        history.shift()
        dropped++
      }
      for (const [res, { after, timer }] of held) {
        clearTimeout(timer)
        held.delete(res)
        answer(res, linesAfter(after))
      }
    },
    close: async () => {
      for (const res of held.keys()) res.destroy()
      http.closeAllConnections?.()
      await new Promise((resolve) => http.close(() => resolve()))
    },
  }
}

/**
 * Plain `ws` with the heartbeat its README recommends: one interval for all clients, `ws.ping()` to
 * each, a flag set again by its pong, and a client that stopped answering terminated. Only for the
 * idle phase: the liveness exchange done the minimal way, beside pushline's. One change to the
 * README's version: a client is dead after no pong for the interval plus pushline's default grace
 * (10 s) rather than after one missed pong, as pushline does; with a bench interval of 1 s and a busy
 * client process, one missed pong would terminate live clients.
 */
async function startWsHeartbeat() {
  const http = createServer()
  const wss = new WebSocketServer({ server: http, path: '/ws' })
  wss.on('connection', (ws) => {
    ws.missedPongs = 0
    ws.on('pong', heartbeat)
  })
  function heartbeat() {
    this.missedPongs = 0
  }
  const interval = setInterval(() => {
    for (const ws of wss.clients) {
      if (ws.missedPongs * HEARTBEAT_MS > HEARTBEAT_MS + HEARTBEAT_GRACE_MS) {
        ws.terminate()
        continue
      }
      ws.missedPongs++
      ws.ping()
    }
  }, HEARTBEAT_MS)
  await listen(http)
  return {
    urls: { websocket: `ws://127.0.0.1:${http.address().port}/ws` },
    publish: () => {
      throw new Error('ws-heartbeat is an idle-phase peer: it does not publish')
    },
    close: () => {
      clearInterval(interval)
      return closeWs(wss, http)
    },
  }
}

/** A raw SSE server with a heartbeat: one comment line per interval written to every open response. */
async function startSseHeartbeat() {
  const { streams, url, close } = await startSseStreams()
  const interval = setInterval(() => {
    for (const res of streams) res.write(': ping\n\n')
  }, HEARTBEAT_MS)
  return {
    urls: { sse: url },
    publish: () => {
      throw new Error('sse-heartbeat is an idle-phase peer: it does not publish')
    },
    close: () => {
      clearInterval(interval)
      return close()
    },
  }
}

/**
 * The floor under any heartbeat: a plain `net` server that writes one small shared buffer to every
 * socket per interval and reads the reply each client sends back. No framing, no parsing, no
 * liveness bookkeeping: one `write` and one `read` per connection per round, what a ping and its
 * pong cannot go below on this machine.
 */
async function startTcpFloor() {
  const PING = Buffer.from('ping\n')
  const sockets = new Set()
  const tcp = createTcpServer((socket) => {
    // As ws and pushline's streams do: no Nagle delay on small writes.
    socket.setNoDelay(true)
    sockets.add(socket)
    socket.on('data', () => {})
    socket.on('error', () => {})
    socket.on('close', () => sockets.delete(socket))
  })
  const interval = setInterval(() => {
    for (const socket of sockets) socket.write(PING)
  }, HEARTBEAT_MS)
  await listen(tcp)
  return {
    urls: { tcp: `tcp://127.0.0.1:${tcp.address().port}` },
    publish: () => {
      throw new Error('tcp-floor is an idle-phase peer: it does not publish')
    },
    close: async () => {
      clearInterval(interval)
      for (const socket of sockets) socket.destroy()
      await new Promise((resolve) => tcp.close(() => resolve()))
    },
  }
}

function listen(server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', 4096, () => resolve())
  })
}

async function settledMemory() {
  // Several passes with a pause between them: ws and http free some buffers in callbacks after a tick.
  for (let i = 0; i < 4; i++) {
    globalThis.gc()
    await sleep(50)
  }
  const m = process.memoryUsage()
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external }
}

/**
 * A heap snapshot summed by what each object is: `{ "<kind> <name>": [count, bytes] }`. Objects and
 * closures by constructor or function name, engine internals by their snapshot name, strings and
 * numbers by type only (their name is their content).
 */
async function heapClasses() {
  for (let i = 0; i < 4; i++) {
    globalThis.gc()
    await sleep(50)
  }
  const chunks = []
  for await (const chunk of getHeapSnapshot()) chunks.push(chunk)
  const snapshot = JSON.parse(Buffer.concat(chunks).toString('utf8'))
  const { node_fields: fields, node_types: [types] } = snapshot.snapshot.meta
  const width = fields.length
  const typeAt = fields.indexOf('type')
  const nameAt = fields.indexOf('name')
  const sizeAt = fields.indexOf('self_size')
  const byName = ['object', 'closure', 'native', 'hidden', 'array', 'code', 'synthetic']
  const classes = {}
  const nodes = snapshot.nodes
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + typeAt]]
    const key = byName.includes(type) ? `${type} ${snapshot.strings[nodes[i + nameAt]]}` : `(${type})`
    const entry = (classes[key] ??= [0, 0])
    entry[0] += 1
    entry[1] += nodes[i + sizeAt]
  }
  return classes
}

/** Microseconds on CLOCK_MONOTONIC, which every process on the host shares (Linux). */
function nowUs() {
  return Number(process.hrtime.bigint() / 1000n)
}

const starters = {
  ws: startWs,
  'ws-batched': startWsBatched,
  socketio: startSocketIo,
  'sse-raw': startSseRaw,
  'poll-raw': startPollRaw,
  pushline: startPushline,
  'ws-heartbeat': startWsHeartbeat,
  'sse-heartbeat': startSseHeartbeat,
  'tcp-floor': startTcpFloor,
}
const target = await starters[kind]()
let cpuStart = null

process.on('message', async (command) => {
  try {
    switch (command.op) {
      case 'memory':
        reply(command, { memory: await settledMemory() })
        break
      case 'heap-classes':
        reply(command, { classes: await heapClasses() })
        break
      case 'cpu-start':
        cpuStart = process.cpuUsage()
        reply(command, {})
        break
      case 'cpu-stop':
        reply(command, { cpu: process.cpuUsage(cpuStart) })
        break
      case 'paced': {
        // Fixed rate; each payload carries the publish time so clients can compute end-to-end latency.
        const intervalMs = 1000 / command.rate
        const started = performance.now()
        for (let i = 0; i < command.count; i++) {
          const wait = started + i * intervalMs - performance.now()
          if (wait > 0) await sleep(wait)
          await target.publish({ seq: i, ts: nowUs(), pad: command.pad })
        }
        reply(command, {})
        break
      }
      case 'burst': {
        // `batch` publishes per event-loop turn, then a yield to I/O as a publisher fed by requests would.
        cpuStart = process.cpuUsage()
        let published = 0
        while (published < command.count) {
          const n = Math.min(command.batch, command.count - published)
          const pending = []
          for (let i = 0; i < n; i++) pending.push(target.publish({ seq: published + i, ts: nowUs(), pad: command.pad }))
          await Promise.all(pending)
          published += n
          await new Promise((resolve) => setImmediate(resolve))
        }
        reply(command, {})
        break
      }
      case 'close':
        await target.close()
        reply(command, {})
        process.disconnect()
        break
      default:
        reply(command, { error: `unknown op ${command.op}` })
    }
  } catch (error) {
    reply(command, { error: String(error?.stack ?? error) })
  }
})

function reply(command, body) {
  process.send({ re: command.id, ...body })
}

// The parent went away: nothing left to measure for.
process.on('disconnect', () => process.exit(0))

process.send({ ready: true, urls: target.urls, pid: process.pid })
