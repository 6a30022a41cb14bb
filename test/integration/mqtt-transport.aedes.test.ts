/** The mqtt() transport suite against aedes' WebSocket listener, in process (MQTT 3.1.1). */
import { describe } from 'vitest'
import { startAedes } from '../helpers/mqtt-brokers.js'
import { registerTransportSuite } from './mqtt-transport-suite.js'

describe('mqtt() transport with aedes', () => {
  registerTransportSuite({ startBroker: (options) => startAedes(options), protocolVersion: 4, orderedResume: false })
})
