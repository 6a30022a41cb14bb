// Child process of bench/fanout.js: runs ONE server under test and measures it from the inside.
//
//   node --expose-gc bench/fanout-server.js pushline|ws
//
// The parent drives it over IPC. The child reports its own CPU time (process.cpuUsage) and memory,
// because only the process that does the work can measure it without counting the clients as well.
// It listens on 127.0.0.1 only, and exits when the parent says so or the IPC channel closes.

import { createServer } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { WebSocketServer } from 'ws'

const kind = process.argv[2]
if (kind !== 'pushline' && kind !== 'ws') {
  console.error('usage: node --expose-gc bench/fanout-server.js pushline|ws')
  process.exit(2)
}
if (typeof process.send !== 'function') {
  console.error('fanout-server.js is started by bench/fanout.js (it needs an IPC channel)')
  process.exit(2)
}
if (typeof globalThis.gc !== 'function') {
  console.error('fanout-server.js needs --expose-gc')
  process.exit(2)
}

const CHANNEL = 'bench'
const EVENT = 'tick'

/**
 * A server under test: `publish` hands one message to the server exactly as an application would.
 * @typedef {{ url: string, publish: (data: unknown) => Promise<void> | void, clients: () => number, stats?: () => unknown, close: () => Promise<void> }} Target
 */

/** @returns {Promise<Target>} */
async function startPushline() {
  let mod
  try {
    mod = await import('pushline/server')
  } catch (error) {
    throw new Error(`cannot import 'pushline/server' (run \`npm run build\` first): ${error.message}`)
  }
  const push = mod.createPushServer({ heartbeatMs: 20_000, historySize: 1000 })
  const http = createServer()
  push.attach(http, { path: '/push' })
  const sockets = trackSockets(http)
  await listen(http)
  return {
    url: `ws://127.0.0.1:${http.address().port}/push/ws`,
    publish: async (data) => {
      await push.publish(CHANNEL, data, { event: EVENT })
    },
    clients: () => sockets.size,
    stats: () => push.stats(),
    close: async () => {
      await push.close()
      http.closeAllConnections?.()
      await new Promise((resolve) => http.close(() => resolve()))
    },
  }
}

/**
 * The baseline: the smallest broadcast server `ws` allows. One JSON.stringify per message, then
 * one `ws.send` per client, no batching, no history, no heartbeat. The frame has the same shape
 * and about the same size as a pushline `message` frame so both move the same bytes.
 * @returns {Promise<Target>}
 */
async function startWs() {
  const http = createServer()
  const wss = new WebSocketServer({ server: http, path: '/ws' })
  const sockets = trackSockets(http)
  await listen(http)
  let offset = 0
  return {
    url: `ws://127.0.0.1:${http.address().port}/ws`,
    publish: (data) => {
      offset += 1
      const text = JSON.stringify({
        type: 'message',
        channel: CHANNEL,
        event: EVENT,
        data,
        offset,
        id: `baseline-${offset}`,
      })
      for (const client of wss.clients) client.send(text)
    },
    clients: () => sockets.size,
    close: async () => {
      for (const client of wss.clients) client.terminate()
      await new Promise((resolve) => wss.close(() => resolve()))
      await new Promise((resolve) => http.close(() => resolve()))
    },
  }
}

/** Open TCP connections: the same count for both servers, whatever their internals. */
function trackSockets(http) {
  const sockets = new Set()
  http.on('connection', (socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  return sockets
}

function listen(http) {
  return new Promise((resolve, reject) => {
    http.once('error', reject)
    http.listen(0, '127.0.0.1', () => resolve())
  })
}

async function settledMemory() {
  // Several passes with a pause between them: ws frees some buffers in callbacks after a tick.
  for (let i = 0; i < 4; i++) {
    globalThis.gc()
    await sleep(50)
  }
  const m = process.memoryUsage()
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers }
}

/** Microseconds on CLOCK_MONOTONIC, which every process on the host shares (Linux). */
function nowUs() {
  return Number(process.hrtime.bigint() / 1000n)
}

const target = kind === 'pushline' ? await startPushline() : await startWs()
let cpuStart = null

process.on('message', async (command) => {
  try {
    switch (command.op) {
      case 'memory':
        reply(command, { memory: await settledMemory(), clients: target.clients() })
        break
      case 'paced': {
        // Fixed rate; each payload carries the publish time so clients can compute end-to-end latency.
        const intervalMs = 1000 / command.rate
        const started = performance.now()
        for (let i = 0; i < command.count; i++) {
          const due = started + i * intervalMs
          const wait = due - performance.now()
          if (wait > 0) await sleep(wait)
          await target.publish({ seq: i, ts: nowUs(), pad: command.pad })
        }
        reply(command, {})
        break
      }
      case 'burst-start': {
        // CPU time from the first publish until the parent has seen every delivery ('burst-stop').
        cpuStart = process.cpuUsage()
        const wallStart = performance.now()
        let published = 0
        while (published < command.count) {
          const n = Math.min(command.batch, command.count - published)
          const pending = []
          for (let i = 0; i < n; i++) {
            pending.push(target.publish({ seq: published + i, ts: nowUs(), pad: command.pad }))
          }
          await Promise.all(pending)
          published += n
          // Yield to I/O between batches, as a real publisher fed by requests or a queue would.
          await new Promise((resolve) => setImmediate(resolve))
        }
        reply(command, { publishMs: performance.now() - wallStart })
        break
      }
      case 'burst-stop': {
        const cpu = process.cpuUsage(cpuStart)
        reply(command, { cpu })
        break
      }
      case 'stats':
        reply(command, { stats: target.stats ? target.stats() : null })
        break
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

process.send({ ready: true, url: target.url, pid: process.pid })
