import { nodeDriver } from './node-driver.js'
import { sseProbe } from './raw-probes.js'
import { defineConformance } from './suite.js'

defineConformance({ transport: 'sse', driver: nodeDriver, raw: sseProbe })
