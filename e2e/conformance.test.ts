/**
 * The conformance suite of test/conformance/ (the same cases the Node client passes), run against
 * the script-tag bundle's client inside Chromium, for every transport. The short-polling page polls
 * every 100 ms (e2e/page/driver.js), as the suite's heartbeats are fast too.
 */
import { afterAll, beforeAll } from 'vitest'
import { defineConformance } from '../test/conformance/suite.js'
import { launchChromium, requireBuild, type LaunchedChromium } from './harness.js'
import { pageDriver } from './page-driver.js'

const TRANSPORTS = ['websocket', 'sse', 'long-polling', 'short-polling', 'iframe']

let chromium: LaunchedChromium | undefined

beforeAll(async () => {
  requireBuild()
  // The driver page is fulfilled by Playwright (e2e/page-driver.ts), so Chromium cannot place it in
  // an IP address space, and its Local Network Access checks then block its WebSocket to loopback
  // (net::ERR_BLOCKED_BY_LOCAL_NETWORK_ACCESS_CHECKS). A real site is served by a host, so this
  // says nothing about pushline; e2e/script-tag.test.ts keeps the checks on.
  chromium = await launchChromium({ args: ['--disable-features=LocalNetworkAccessChecks'] })
})
afterAll(async () => {
  await chromium?.close()
})

const context = () => {
  if (!chromium) throw new Error('Chromium is not running')
  return chromium.context
}

for (const transport of TRANSPORTS) {
  defineConformance({ transport, driver: () => pageDriver(context), serverHoldsLink: transport !== 'short-polling' })
}
