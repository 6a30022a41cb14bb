/** The MQTT bridge suite against aedes, in process (MQTT 3.1.1: aedes has no MQTT 5). */
import { describe } from 'vitest'
import { startAedes } from '../helpers/mqtt-brokers.js'
import { registerBridgeSuite } from './mqtt-bridge-suite.js'

describe('mqttBridge with aedes', () => {
  registerBridgeSuite({ startBroker: (options) => startAedes(options), protocolVersion: 4, streamCount: 250, orderedResume: false })
})
