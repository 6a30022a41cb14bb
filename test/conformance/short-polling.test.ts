import { nodeDriver } from './node-driver.js'
import { restateDeviations, skipDeviations } from './polling.js'
import { pollProbe } from './raw-probes.js'
import { defineConformance } from './suite.js'

skipDeviations('short-polling')
defineConformance({ transport: 'short-polling', driver: nodeDriver, raw: pollProbe })
restateDeviations('short-polling')
