/**
 * What the Node conformance files of the two polling transports share: a raw probe of the poll
 * endpoint, and the cases of the suite that rest on a persistent link, which polls do not have.
 * Those are skipped for polls (with the reason), and restated here in a form that holds for them,
 * as e2e/conformance.test.ts does for Chromium.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { PushClient, shortPolling, type PushMessage } from '../../src/index.js'
import { sleep, startPushFixture, waitFor, type PushFixture } from '../helpers/push-fixture.js'
import { suiteServerOptions } from './suite.js'

export const CUT_REPEATEDLY = 'delivers every message exactly once, in order, while links are cut repeatedly'
const UNSUBSCRIBE = 'stops delivery after unsubscribe'
const OUTAGE = 'keeps subscriptions made before connect and during an outage'

/**
 * Why the suite's cases cannot hold for polls, by transport and case name.
 *
 * Cuts: the case expects one reconnect per cut. A cut that falls between two polls (the answer is
 * in, the next request not yet out; for short polls, most of the interval) hits no request: the
 * next poll simply goes out on a new connection and delivery goes on, with nothing to reconnect.
 * Only a cut during a poll fails a request (Node's fetch rejects; Chromium even resends it).
 *
 * Short polls and `push.stats()`: these cases wait until the server holds the subscriptions. A
 * short poll keeps nothing on the server: it is answered at once (`hold=0`), so the count is 0
 * whenever the test looks.
 */
export const DEVIATIONS: Record<string, Record<string, string>> = {
  'long-polling': { [CUT_REPEATEDLY]: 'a cut between two polls hits no request: no reconnect to count' },
  'short-polling': {
    [CUT_REPEATEDLY]: 'a cut between two polls hits no request: no reconnect to count',
    [UNSUBSCRIBE]: 'short polls leave no subscription on the server for push.stats() to see',
    [OUTAGE]: 'short polls leave no subscription on the server for push.stats() to see',
  },
}

/** Skips this file's deviating cases of the suite (call before defineConformance). */
export function skipDeviations(transport: 'long-polling' | 'short-polling'): void {
  beforeEach(({ task, skip }) => {
    const reason = task.suite?.name === `conformance: ${transport}` ? DEVIATIONS[transport]?.[task.name] : undefined
    if (reason) skip(`${transport}: ${reason} (see test/conformance/polling.ts)`)
  })
}

/** The deviating cases, restated in a form that holds for polls. */
export function restateDeviations(transport: 'long-polling' | 'short-polling'): void {
  describe(`conformance: ${transport}, deviating cases restated`, () => {
    let fixture: PushFixture
    const clients: PushClient[] = []
    const client = () => {
      const made = new PushClient({
        url: fixture.url,
        // Short polls every 100 ms, so that these cases take well under a second per outage.
        transports: [transport === 'short-polling' ? shortPolling({ intervalMs: 100 }) : transport],
        heartbeatGraceMs: 300,
        reconnect: { initialDelayMs: 50, maxDelayMs: 400 },
      })
      clients.push(made)
      return made
    }
    const collect = (made: PushClient, channel: string) => {
      const received: number[] = []
      const gaps: unknown[] = []
      const sub = made.subscribe(channel, (msg: PushMessage) => received.push((msg.data as { n: number }).n))
      sub.on('gap', (gap) => gaps.push(gap))
      return { received, gaps, sub }
    }
    const opens = (made: PushClient) => {
      let count = 0
      made.on('state', (state) => (count += state === 'open' ? 1 : 0))
      return () => count
    }

    beforeEach(async () => {
      fixture = await startPushFixture(suiteServerOptions)
    })
    afterEach(async () => {
      for (const made of clients.splice(0)) made.close()
      await fixture.close()
    })

    it('every message exactly once, in order, while links are cut repeatedly', async () => {
      const made = client()
      const { received, gaps } = collect(made, 'stream')
      made.connect()
      let n = 0
      for (let round = 0; round < 8; round++) {
        await waitFor(() => made.state === 'open' && fixture.proxy.links > 0, `an open link before cut ${round}`)
        for (let i = 0; i < 30; i++) {
          await fixture.push.publish('stream', { n: ++n })
          if (i === 10) fixture.proxy.cutAll()
          await sleep(3)
        }
      }
      await waitFor(() => received.length >= n, `${n} messages`)
      await sleep(100)
      expect(received).toEqual(Array.from({ length: n }, (_, i) => i + 1))
      expect(gaps).toEqual([])
    })

    if (transport !== 'short-polling') return

    it(`${UNSUBSCRIBE} (no server-side count)`, async () => {
      const made = client()
      const a = collect(made, 'a')
      const b = collect(made, 'b')
      made.connect()
      await waitFor(() => made.state === 'open', 'open')
      await fixture.push.publish('a', { n: 1 })
      await waitFor(() => a.received.length === 1, 'a 1')
      a.sub.unsubscribe()
      // Several intervals: the polls since carry a cursor without `a`.
      await sleep(400)
      await fixture.push.publish('a', { n: 2 })
      await fixture.push.publish('b', { n: 1 })
      await waitFor(() => b.received.length === 1, 'b 1')
      await sleep(400)
      expect(a.received).toEqual([1])
    })

    it(`${OUTAGE} (no server-side count)`, async () => {
      const made = client()
      const openCount = opens(made)
      const early = collect(made, 'early')
      made.connect()
      // The first poll's answer carries hello and the subscription (its subscribed frame).
      await waitFor(() => made.state === 'open', 'open')
      fixture.proxy.refuse(true)
      fixture.proxy.cutAll()
      await waitFor(() => made.state === 'reconnecting', 'reconnecting')
      const late = collect(made, 'late')
      fixture.proxy.refuse(false)
      await waitFor(() => openCount() === 2, 'reopen')
      await fixture.push.publish('early', { n: 1 })
      await fixture.push.publish('late', { n: 1 })
      await waitFor(() => early.received.length === 1 && late.received.length === 1, 'both')
      expect([early.received, late.received]).toEqual([[1], [1]])
    })
  })
}
