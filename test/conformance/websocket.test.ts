import { nodeDriver } from './node-driver.js'
import { websocketProbe } from './raw-probes.js'
import { defineConformance } from './suite.js'

defineConformance({ transport: 'websocket', driver: nodeDriver, raw: websocketProbe })
