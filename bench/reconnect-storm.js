// Reconnect storm: N pushline clients (WebSocket) on one server; the server restarts (gracefully:
// every client gets a `close` frame with a random retryMs in [0, 2 s)); how do they come back?
//
//   npm run build && node bench/reconnect-storm.js
//   STORM_CLIENTS=3000 STORM_MODE=kill node bench/reconnect-storm.js   (crash instead: no close frame)
//   STORM_VERBOSE=1 ...                                                (progress every 2 s)
//
// Run twice in one go, side by side: the server with its default accept rate limit
// (maxConnectsPerSecond 500) and the same server without one. Reported per run: time until every
// client is back and has a message published after the restart, the arrival histogram of upgrade
// requests at the new server (250 ms buckets), and the new server's worst event-loop stall
// (monitorEventLoopDelay). The ratios at the end compare the two runs of this machine; absolute
// numbers depend on it and on what else runs.

import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { PushClient, websocket } from '../dist/index.js'
import { guardChildren, intFromEnv } from './bench-process.js'

const CLIENTS = intFromEnv('STORM_CLIENTS', 3000, 1, 20_000)
const MODE = process.env.STORM_MODE === 'kill' ? 'kill' : 'graceful'
const PHASE_TIMEOUT_MS = intFromEnv('STORM_PHASE_TIMEOUT_MS', 120_000, 1000, 600_000)
const SERVER_SCRIPT = fileURLToPath(new URL('./storm-server.js', import.meta.url))

const { children, shutdown } = guardChildren('storm', 10 * 60_000)


function startServer(port, options) {
  const child = fork(SERVER_SCRIPT, [], {
    env: { ...process.env, STORM_PORT: String(port), STORM_OPTIONS: JSON.stringify(options) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  children.add(child)
  child.once('exit', () => children.delete(child))
  return new Promise((resolve, reject) => {
    child.once('error', reject)
    child.on('message', function onReady(message) {
      if (message.type !== 'ready') return
      child.off('message', onReady)
      resolve({ child, port: message.port })
    })
  })
}

function ask(child, message, answerType) {
  return new Promise((resolve) => {
    child.on('message', function onAnswer(answer) {
      if (answer.type !== answerType) return
      child.off('message', onAnswer)
      resolve(answer)
    })
    child.send(message)
  })
}

/** Asks the server to close (its clients get `close` frames) and waits for its process to end. */
function stopServer(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  const exited = new Promise((resolve) => child.once('exit', resolve))
  if (child.connected) child.send({ type: 'close' })
  return exited
}

async function until(check, what) {
  const started = Date.now()
  while (!check()) {
    if (Date.now() - started > PHASE_TIMEOUT_MS) throw new Error(`timed out waiting for ${what}`)
    if (process.env.STORM_VERBOSE) console.log(what, Date.now() - started)
    await sleep(50)
  }
}

async function run(label, options) {
  let server = await startServer(0, options)
  const url = `http://127.0.0.1:${server.port}/push`
  const clients = []
  /** Client errors by code and message, for STORM_VERBOSE. */
  const errors = new Map()
  const lastData = new Array(CLIENTS).fill(undefined)
  for (let i = 0; i < CLIENTS; i++) {
    const client = new PushClient({ url, transports: [websocket()], upgradeProbeMs: 0 })
    client.on('error', (error) => {
      const key = `${error.code} ${error.message.slice(0, 60)}`
      errors.set(key, (errors.get(key) ?? 0) + 1)
    })
    client.subscribe('storm', (message) => {
      lastData[i] = message.data
    })
    client.connect()
    clients.push(client)
    // Don't storm the first connect (250/s, under the default accept rate): this run measures the reconnect.
    if (i % 50 === 49) await sleep(200)
  }
  const open = () => clients.filter((client) => client.state === 'open').length
  if (process.env.STORM_VERBOSE) setInterval(() => console.log('open', open(), [...errors].slice(0, 4)), 2000).unref()
  await until(() => open() === CLIENTS, 'every client to connect')

  const restartedAt = Date.now()
  if (MODE === 'kill') server.child.kill('SIGKILL')
  await stopServer(server.child)
  server = await startServer(server.port, options)
  // Every client is back once it receives a message published after the restart.
  const marker = `after-restart-${label}`
  await until(() => open() === CLIENTS, 'every client to reconnect')
  await ask(server.child, { type: 'publish', channel: 'storm', data: marker }, 'published')
  await until(() => lastData.every((data) => data === marker), 'every client to get the message')
  const backMs = Date.now() - restartedAt
  const report = await ask(server.child, { type: 'report' }, 'report')
  for (const client of clients) client.close()
  await stopServer(server.child)
  return { label, backMs, ...report }
}

function printRun(result) {
  console.log(`\n== ${result.label} ==`)
  console.log(`all ${CLIENTS} clients back (with a message published after the restart) in ${result.backMs} ms`)
  console.log(`new server's worst event-loop stall ${result.worstStallMs.toFixed(1)} ms, p99 ${result.p99StallMs.toFixed(1)} ms`)
  console.log(`upgrade requests per ${result.bucketMs} ms since the new server started:`)
  const most = Math.max(1, ...result.arrivals)
  result.arrivals.forEach((count, i) => {
    if (count === 0) return
    const bar = '#'.repeat(Math.ceil((count / most) * 50))
    console.log(`  ${String(i * result.bucketMs).padStart(6)} ms ${String(count).padStart(5)} ${bar}`)
  })
}

async function main() {
  console.log(`reconnect storm: ${CLIENTS} WebSocket clients, server restart mode: ${MODE}`)
  // Every client is on 127.0.0.1: the per-address limit (1,000 by default) would refuse all past it.
  const perIp = { maxConnectionsPerIp: 1_000_000 }
  const limited = await run('accept rate limited (default, 500/s)', perIp)
  const unlimited = await run('no accept rate limit', { ...perIp, maxConnectsPerSecond: 1_000_000_000 })
  printRun(limited)
  printRun(unlimited)
  console.log('\nratios (limited / unlimited):')
  console.log(`  time until all back      ${(limited.backMs / unlimited.backMs).toFixed(2)}`)
  console.log(`  worst event-loop stall   ${(limited.worstStallMs / unlimited.worstStallMs).toFixed(2)}`)
  console.log(`  upgrade requests         ${(sum(limited.arrivals) / sum(unlimited.arrivals)).toFixed(2)} (refused ones come back)`)
  shutdown(0)
}

const sum = (values) => values.reduce((total, value) => total + value, 0)

main().catch((error) => {
  console.error(error)
  shutdown(1)
})
