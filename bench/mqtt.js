// MQTT bridge benchmark: what pushline/mqtt-bridge adds between a device and a page, beside a direct
// mqtt.js subscriber of the same broker in the same run.
//
//   npm run build && node bench/mqtt.js
//   BENCH_MQTT_MESSAGES=20000 BENCH_MQTT_RATE=200 BENCH_MQTT_SECONDS=10 node bench/mqtt.js
//
// Needs Debian's mosquitto (apt-get install -y --no-install-recommends mosquitto), started here on a
// free loopback port with its own config (no persistence) and stopped by its pid.
//
// 1. Throughput: the bridge and a direct subscriber each subscribe with a persistent session and
//    disconnect; a device publishes BENCH_MQTT_MESSAGES QoS 1 messages, which the broker queues for
//    both; then each reconnects alone and drains its queue. Rates: messages stored in pushline
//    (push.publish resolved; the bridge takes them one at a time, in order, and PUBACKs each once
//    stored) and messages received by the direct subscriber, per second from reconnect.
// 2. Latency: the device publishes BENCH_MQTT_RATE messages/s for BENCH_MQTT_SECONDS, each carrying
//    its send time; percentiles of publish → delivery for the direct subscriber, a pushline
//    WebSocket client and a pushline long-polling client through the bridge, and a PushClient on
//    the mqtt() transport straight on the broker's WebSocket listener (Node PushClients from
//    dist/). "Added" is each percentile minus the direct subscriber's.
// Everything but mosquitto runs in this one process (2 cores shared with the broker): the numbers
// compare the paths, not the machine.

import { spawn } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import net from 'node:net'
import { cpus, loadavg, tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { connect, connectAsync } from 'mqtt'
import { PushClient } from '../dist/index.js'
import { mqtt } from '../dist/mqtt.js'
import { mqttBridge } from '../dist/mqtt-bridge.js'
import { createPushServer } from '../dist/server.js'
import { intFromEnv } from './bench-process.js'

const MESSAGES = intFromEnv('BENCH_MQTT_MESSAGES', 20_000, 100, 1_000_000)
const RATE = intFromEnv('BENCH_MQTT_RATE', 200, 1, 5_000)
const SECONDS = intFromEnv('BENCH_MQTT_SECONDS', 10, 1, 120)
const WINDOW = 100
const PHASE_TIMEOUT_MS = 120_000
const MOSQUITTO = ['/usr/sbin/mosquitto', '/usr/bin/mosquitto', '/usr/local/sbin/mosquitto'].find(executable)

/** Everything this script started, stopped in reverse order. */
const cleanups = []
const watchdog = setTimeout(() => fail(new Error('gave up after 10 minutes')), 10 * 60_000)
watchdog.unref()
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => fail(new Error(signal)))

async function main() {
  if (!MOSQUITTO) {
    console.error('bench/mqtt: mosquitto not found (apt-get install -y --no-install-recommends mosquitto)')
    process.exit(1)
  }
  const load = loadavg()[0] ?? 0
  console.log(`bench/mqtt: node ${process.version}, ${cpus().length} CPUs, load ${load.toFixed(1)}, mosquitto ${MOSQUITTO}`)
  if (load > cpus().length) console.log('bench/mqtt: the machine is busy (load above its CPU count): expect noisy figures, p99 most')
  const broker = await startMosquitto()
  const http = createServer()
  const push = createPushServer({ heartbeatMs: 20_000 })
  push.attach(http, { path: '/push' })
  await new Promise((resolve) => http.listen(0, '127.0.0.1', resolve))
  cleanups.push(async () => {
    await push.close()
    http.closeAllConnections()
    await new Promise((resolve) => http.close(resolve))
  })
  const pushUrl = `http://127.0.0.1:${http.address().port}/push`
  const bridgeOptions = {
    url: broker.url,
    clientId: `bench-bridge-${process.pid}`,
    subscribe: ['bench/#'],
    logger: { error: (message) => console.error(message), warn: (message) => console.error(message) },
  }
  const directOptions = {
    protocolVersion: 5,
    clientId: `bench-direct-${process.pid}`,
    clean: false,
    properties: { sessionExpiryInterval: 600 },
  }
  const device = await connectAsync(broker.url, { protocolVersion: 5, clientId: `bench-device-${process.pid}` })
  cleanups.push(() => device.endAsync(true))

  // ---- 1. throughput ----
  // Both receivers subscribe with a persistent session and go away; the device publishes; then
  // each comes back alone and drains its queue from the broker as fast as it can.
  const firstBridge = mqttBridge(push, bridgeOptions)
  await firstBridge.ready()
  await firstBridge.close()
  const firstDirect = await connectAsync(broker.url, directOptions)
  await firstDirect.subscribeAsync('bench/#', { qos: 1 })
  await firstDirect.endAsync()
  const payload = JSON.stringify({ pad: 'x'.repeat(64) })
  let inFlight = 0
  for (let n = 0; n < MESSAGES; n++) {
    while (inFlight >= WINDOW) await sleep(0)
    inFlight++
    device.publish('bench/throughput', payload, { qos: 1 }, () => inFlight--)
  }
  await waitUntil(() => inFlight === 0, 'the device to finish')

  let started = performance.now()
  const bridge = mqttBridge(push, bridgeOptions)
  cleanups.push(() => bridge.close())
  const bridgeDone = await waitUntil(() => bridge.stats().published >= MESSAGES, 'the bridge to store every message')
  const bridgeRate = MESSAGES / ((bridgeDone - started) / 1000)

  let directCount = 0
  started = performance.now()
  const direct = connect(broker.url, { ...directOptions, manualConnect: true })
  direct.on('message', (topic) => {
    if (topic === 'bench/throughput') directCount++
  })
  direct.connect()
  cleanups.push(() => direct.endAsync(true))
  const directDone = await waitUntil(() => directCount >= MESSAGES, 'the direct subscriber to drain')
  const directRate = MESSAGES / ((directDone - started) / 1000)
  console.log(`\n1. throughput: a queue of ${MESSAGES} QoS 1 messages (${payload.length} bytes) drained from a persistent session`)
  console.log(`   direct mqtt.js subscriber   ${fmt(directRate)} msg/s`)
  console.log(`   bridge into pushline        ${fmt(bridgeRate)} msg/s   (${(bridgeRate / directRate).toFixed(2)}× direct)`)

  // ---- 2. latency ----
  const latencies = { direct: [], websocket: [], 'long-polling': [], 'mqtt()': [] }
  direct.on('message', (topic, bytes) => {
    if (topic === 'bench/latency') latencies.direct.push(performance.now() - JSON.parse(bytes.toString()).sentAt)
  })
  for (const transport of ['websocket', 'long-polling']) {
    const client = new PushClient({ url: pushUrl, transports: [transport] })
    cleanups.push(() => client.close())
    const subscription = client.subscribe('bench/latency', (message) => {
      latencies[transport].push(performance.now() - message.data.payload.sentAt)
    })
    const subscribed = new Promise((resolve) => subscription.on('subscribed', resolve))
    client.connect()
    await subscribed
  }
  // The other way to a page: PushClient straight on the broker's WebSocket listener, no bridge.
  const overMqtt = new PushClient({ url: broker.wsUrl, transports: [mqtt({ clientId: `bench-page-${process.pid}` })] })
  cleanups.push(() => overMqtt.close())
  const overMqttSubscription = overMqtt.subscribe('bench/latency', (message) => {
    latencies['mqtt()'].push(performance.now() - message.data.payload.sentAt)
  })
  const overMqttSubscribed = new Promise((resolve) => overMqttSubscription.on('subscribed', resolve))
  overMqtt.connect()
  await overMqttSubscribed
  const total = RATE * SECONDS
  const begin = performance.now()
  for (let n = 0; n < total; n++) {
    // Paced against the clock, not by sleeping a fixed step, so that slow steps do not stretch the run.
    const due = begin + (n * 1000) / RATE
    const wait = due - performance.now()
    if (wait > 1) await sleep(wait)
    device.publish('bench/latency', JSON.stringify({ n, sentAt: performance.now() }), { qos: 1 })
  }
  await waitUntil(
    () => Object.values(latencies).every((list) => list.length >= total),
    'every latency message at every receiver',
  )
  console.log(`\n2. latency, device publish → delivery, ${RATE} msg/s for ${SECONDS} s (${total} messages)`)
  console.log('   receiver                      p50 ms     p99 ms   added p50   added p99')
  const base = { p50: percentile(latencies.direct, 50), p99: percentile(latencies.direct, 99) }
  for (const [name, list] of Object.entries(latencies)) {
    const p50 = percentile(list, 50)
    const p99 = percentile(list, 99)
    const label =
      name === 'direct' ? 'direct mqtt.js subscriber' : name === 'mqtt()' ? 'PushClient, mqtt() transport' : `bridge → ${name} client`
    const added = name === 'direct' ? '' : `${(p50 - base.p50).toFixed(2).padStart(9)}   ${(p99 - base.p99).toFixed(2).padStart(9)}`
    console.log(`   ${label.padEnd(28)}${p50.toFixed(2).padStart(7)}  ${p99.toFixed(2).padStart(9)}  ${added}`)
  }
  const stats = bridge.stats()
  console.log(`\nbridge stats: received ${stats.received}, published ${stats.published}, dropped ${stats.dropped}, reconnects ${stats.reconnects}`)
}

async function startMosquitto() {
  const dir = await mkdtemp(join(tmpdir(), 'pushline-bench-mosquitto-'))
  const port = await freePort()
  const wsPort = await freePort()
  const config = [
    `user ${userInfo().username}`,
    'persistence false',
    `listener ${port} 127.0.0.1`,
    'socket_domain ipv4',
    'set_tcp_nodelay true',
    'allow_anonymous true',
    'log_dest none',
    // The throughput phase queues more than the default 1000 in-flight/queued messages per client.
    'max_queued_messages 0',
    `listener ${wsPort} 127.0.0.1`,
    'socket_domain ipv4',
    'protocol websockets',
    'allow_anonymous true',
    '',
  ].join('\n')
  await writeFile(join(dir, 'mosquitto.conf'), config)
  const child = spawn(MOSQUITTO, ['-c', join(dir, 'mosquitto.conf')], { stdio: ['ignore', 'ignore', 'inherit'] })
  cleanups.push(async () => {
    if (child.exitCode === null) {
      const gone = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGTERM')
      await gone
    }
    await rm(dir, { recursive: true, force: true })
  })
  await waitUntil(() => accepting(port), 'mosquitto to listen', 10_000)
  return { url: `mqtt://127.0.0.1:${port}`, wsUrl: `ws://127.0.0.1:${wsPort}` }
}

async function waitUntil(check, what, timeoutMs = PHASE_TIMEOUT_MS) {
  const started = performance.now()
  while (!(await check())) {
    if (performance.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await sleep(5)
  }
  return performance.now()
}

function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN
}

async function freePort() {
  const server = net.createServer()
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  await new Promise((resolve) => server.close(resolve))
  return port
}

function accepting(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

function executable(path) {
  try {
    accessSync(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}


const fmt = (value) => Math.round(value).toLocaleString('en-US')

async function stopAll() {
  for (const cleanup of cleanups.splice(0).reverse()) {
    try {
      await cleanup()
    } catch (error) {
      console.error(`bench/mqtt: cleanup failed: ${error.message}`)
    }
  }
}

function fail(error) {
  console.error(`bench/mqtt: ${error.message}`)
  void stopAll().finally(() => process.exit(1))
}

main()
  .then(stopAll)
  .then(() => process.exit(0), fail)
