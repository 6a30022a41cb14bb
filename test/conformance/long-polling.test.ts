import { nodeDriver } from './node-driver.js'
import { restateDeviations, skipDeviations } from './polling.js'
import { pollProbe } from './raw-probes.js'
import { defineConformance } from './suite.js'

skipDeviations('long-polling')
defineConformance({ transport: 'long-polling', driver: nodeDriver, raw: pollProbe })
restateDeviations('long-polling')
