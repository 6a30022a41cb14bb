import { nodeDriver } from './node-driver.js'
import { pollProbe } from './raw-probes.js'
import { defineConformance } from './suite.js'

defineConformance({ transport: 'long-polling', driver: nodeDriver, raw: pollProbe })
