/**
 * The MQTT bridge suite against Debian's Mosquitto (MQTT 5), started per test on free loopback
 * ports with its own config file (no persistence) and stopped by its pid; plus what only a broker
 * that runs as its own process shows: a broker restart.
 */
import { describe } from 'vitest'
import { requireMosquitto, startMosquitto } from '../helpers/mqtt-brokers.js'
import { registerBridgeSuite } from './mqtt-bridge-suite.js'

const mosquitto = requireMosquitto()

describe.skipIf(!mosquitto)('mqttBridge with Mosquitto', () => {
  registerBridgeSuite({
    startBroker: (options) => startMosquitto(mosquitto as string, options),
    protocolVersion: 5,
    streamCount: 1000,
    orderedResume: true,
  })
})
