// The smart-home part of the demo: an embedded MQTT broker (aedes, so `npm run demo` needs no broker
// installed), three simulated devices that speak MQTT to it like real ones, and pushline's MQTT
// bridge that carries their messages into channels and the page's light commands back to MQTT.
//
//   home/livingroom/climate  a temperature/humidity sensor, a reading every 2 s
//   home/light/set           commands from the page (forwarded by the bridge, QoS 1)
//   home/light/state         the light's acknowledged state (retained), after each command
//   home/plug/power          a smart plug's power draw, every 3 s
//   home/plug/status         the plug's online state (retained); its last will says offline when it
//                            loses power (every 40 s or so, for 10 s)
//
// Any MQTT client can join in on the printed ports, e.g.
//   mosquitto_sub -h 127.0.0.1 -p <tcp port> -t 'home/#' -v
//   mosquitto_pub -h 127.0.0.1 -p <tcp port> -t home/light/set -m '{"on":true}'

import { createServer as createHttpServer } from 'node:http'
import { createServer as createTcpServer } from 'node:net'
import { Aedes } from 'aedes'
import { connectAsync } from 'mqtt'
import { mqttBridge } from 'pushline/mqtt-bridge'
import { PushError } from 'pushline/server'
import { WebSocketServer, createWebSocketStream } from 'ws'

export const LIGHT_COMMANDS = 'home/light/set'

/**
 * Starts the broker on loopback ports (0 = any free port), the devices and the bridge into `push`.
 * Returns the hook for the server's onPublish (light commands), the devices' current state for the
 * devices' current state (`snapshot()`), and close(). The plug loses power every
 * `plugPowerCutEveryMs` for `plugOutageMs`.
 */
export async function startMqttDevices(
  push,
  { host = '127.0.0.1', tcpPort = 0, wsPort = 0, plugPowerCutEveryMs = 40_000, plugOutageMs = 10_000 } = {},
) {
  const broker = await Aedes.createBroker()
  const tcp = createTcpServer(broker.handle)
  const http = createHttpServer()
  const wss = new WebSocketServer({ server: http })
  wss.on('connection', (socket, req) => broker.handle(createWebSocketStream(socket), req))
  await new Promise((resolve) => tcp.listen(tcpPort, host, resolve))
  await new Promise((resolve) => http.listen(wsPort, host, resolve))
  const url = `mqtt://${host}:${tcp.address().port}`
  const wsUrl = `ws://${host}:${http.address().port}`
  console.log(`demo MQTT broker (aedes): ${url}   MQTT over WebSocket ${wsUrl}`)

  // The devices' own truth (pages see it through the channels' newest messages, with rewind).
  const state = {
    climate: null,
    light: { on: false, at: new Date().toISOString() },
    plug: { online: false, watts: 0, at: null },
  }
  const timers = []
  const every = (ms, task) => timers.push(setInterval(() => task().catch(() => {}), ms))
  const connectDevice = (clientId, options = {}) =>
    // aedes speaks MQTT 3.1.1.
    connectAsync(url, { clientId, protocolVersion: 4, reconnectPeriod: 1000, ...options })

  // Temperature/humidity: a slow drift with noise.
  const climate = await connectDevice('demo-climate')
  let temperature = 21.5
  let humidity = 45
  every(2000, async () => {
    temperature = round(Math.min(26, Math.max(18, temperature + (Math.random() - 0.5) * 0.4)))
    humidity = round(Math.min(60, Math.max(35, humidity + (Math.random() - 0.5) * 1.5)))
    state.climate = { temperature, humidity, at: new Date().toISOString() }
    await climate.publishAsync('home/livingroom/climate', JSON.stringify(state.climate), { qos: 1 })
  })

  // The light: takes a command, switches, and reports its state (retained: the broker's copy of it).
  const light = await connectDevice('demo-light')
  const reportLight = () =>
    light.publishAsync('home/light/state', JSON.stringify(state.light), { qos: 1, retain: true })
  await light.subscribeAsync(LIGHT_COMMANDS, { qos: 1 })
  light.on('message', (topic, payload) => {
    if (topic !== LIGHT_COMMANDS) return
    let command
    try {
      command = JSON.parse(payload.toString())
    } catch {
      return
    }
    if (typeof command?.on !== 'boolean') return
    // A relay takes a moment.
    setTimeout(() => {
      state.light = { on: command.on, at: new Date().toISOString() }
      reportLight().catch(() => {})
    }, 150)
  })
  await reportLight()

  // The plug: online while connected; when it loses power the broker publishes its last will.
  const offline = JSON.stringify({ online: false, reason: 'connection lost (last will)' })
  const plug = await connectDevice('demo-plug', {
    will: { topic: 'home/plug/status', payload: Buffer.from(offline), qos: 1, retain: true },
    reconnectPeriod: plugOutageMs,
  })
  const plugOnline = () => {
    state.plug = { ...state.plug, online: true, at: new Date().toISOString() }
    return plug.publishAsync('home/plug/status', JSON.stringify({ online: true }), { qos: 1, retain: true })
  }
  plug.on('connect', () => plugOnline().catch(() => {}))
  await plugOnline()
  every(3000, async () => {
    if (!plug.connected) return
    state.plug.watts = Math.round(60 + Math.random() * 25)
    await plug.publishAsync('home/plug/power', JSON.stringify({ watts: state.plug.watts, at: new Date().toISOString() }), { qos: 1 })
  })
  every(plugPowerCutEveryMs, async () => {
    if (!plug.connected) return
    // Power cut: the socket dies without a DISCONNECT, so the broker sends the will. mqtt.js
    // reconnects plugOutageMs later (reconnectPeriod) and the plug says it is online again.
    state.plug = { ...state.plug, online: false, watts: 0, at: new Date().toISOString() }
    plug.stream.destroy()
  })

  // pushline's side: devices' topics into channels of the same names, light commands out.
  const bridge = mqttBridge(push, {
    url,
    clientId: 'pushline-demo-bridge',
    protocolVersion: 4,
    // Not home/#: on MQTT 3.1.1 the bridge would get its own forwarded commands back (no No Local).
    subscribe: ['home/+/climate', 'home/+/state', 'home/+/status', 'home/+/power'],
    forward: (channel) => (channel === LIGHT_COMMANDS ? LIGHT_COMMANDS : undefined),
  })
  await bridge.ready()

  return {
    url,
    wsUrl,
    bridge,
    /** For the server's onPublish: a light command must be `{ on: boolean }`; then the bridge forwards it. */
    async onPublish(context) {
      if (context.channel !== LIGHT_COMMANDS) throw new PushError('PUBLISH_REJECTED', `${context.channel} is read-only`)
      const { data } = context
      if (typeof data !== 'object' || data === null || typeof data.on !== 'boolean' || Object.keys(data).length !== 1) {
        throw new PushError('PUBLISH_REJECTED', 'a light command is { "on": true | false }')
      }
      return bridge.onPublish(context)
    },
    snapshot: () => structuredClone(state),
    async close() {
      for (const timer of timers) clearInterval(timer)
      await bridge.close()
      await Promise.all([climate, light, plug].map((device) => device.endAsync(true)))
      for (const client of wss.clients) client.terminate()
      await new Promise((resolve) => broker.close(resolve))
      await new Promise((resolve) => tcp.close(resolve))
      http.closeAllConnections()
      await new Promise((resolve) => http.close(resolve))
    },
  }
}

const round = (value) => Math.round(value * 10) / 10
