import { nodeDriver } from './node-driver.js'
import { pollProbe, restateDeviations, skipDeviations } from './polling.js'
import { defineConformance } from './suite.js'

skipDeviations('short-polling')
defineConformance({ transport: 'short-polling', driver: nodeDriver, raw: pollProbe })
restateDeviations('short-polling')
