import { nodeDriver } from './node-driver.js'
import { pollProbe, restateDeviations, skipDeviations } from './polling.js'
import { defineConformance } from './suite.js'

skipDeviations('long-polling')
defineConformance({ transport: 'long-polling', driver: nodeDriver, raw: pollProbe })
restateDeviations('long-polling')
