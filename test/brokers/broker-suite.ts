import { randomBytes } from 'node:crypto'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { EPOCH_PATTERN } from '../../src/protocol/position.js'
import type { Broker, StoredMessage } from '../../src/server/index.js'

// The contract every broker must keep (src/server/brokers/broker.ts), as the
// hub relies on it: per-channel offsets 1, 2, 3, ... without holes even under
// concurrent publishes, delivery in offset order, recovery by the rules of
// protocol.md section 4, and calls after close that reject instead of hang.
// A broker's test file calls registerBrokerTests once. Nothing here assumes
// delivery within the publishing call: deliveries are awaited.

export interface BrokerSuiteOptions {
  /**
   * Messages per channel that the brokers `create` makes keep in history, at
   * most; the suite publishes more than this to see history run out.
   * @default 100
   */
  historySize?: number
  /**
   * How long (ms) the suite waits for a delivery before failing.
   * @default 5000
   */
  deliveryTimeoutMs?: number
}

/** Registers the broker conformance tests for brokers made by `create` (one per test, closed after it). */
export function registerBrokerTests(
  name: string,
  create: () => Promise<Broker> | Broker,
  options: BrokerSuiteOptions = {},
): void {
  const historySize = options.historySize ?? 100
  const timeout = options.deliveryTimeoutMs ?? 5000
  const poll = { timeout, interval: 5 }

  describe(`broker conformance: ${name}`, () => {
    let broker: Broker
    let closed: boolean

    beforeEach(async () => {
      broker = await create()
      closed = false
    })

    afterEach(async () => {
      if (!closed) await broker.close()
    })

    /** A channel no other test (or earlier run against the same store) uses. */
    const freshChannel = (label: string): string => `suite.${label}.${randomBytes(6).toString('hex')}`

    /** Subscribes a listener that records what it gets. */
    async function listen(channel: string): Promise<{ got: StoredMessage[]; stop: () => void }> {
      const got: StoredMessage[] = []
      const stop = await broker.subscribe(channel, (message) => got.push(message))
      return { got, stop }
    }

    async function publishInSequence(channel: string, count: number): Promise<StoredMessage[]> {
      const stored: StoredMessage[] = []
      for (let i = 1; i <= count; i++) stored.push(await broker.publish(channel, 'tick', { i }))
      return stored
    }

    const offsets = (messages: readonly StoredMessage[]) => messages.map((message) => message.offset)
    const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

    describe('publish', () => {
      it('numbers a channel 1, 2, 3, ... in one epoch, each channel on its own', async () => {
        const a = freshChannel('a')
        const b = freshChannel('b')
        const stored = await publishInSequence(a, 3)
        const b1 = await broker.publish(b, 'other', 'text')
        expect(stored[0]).toEqual({ channel: a, event: 'tick', data: { i: 1 }, epoch: expect.any(String), offset: 1 })
        expect(stored[0]?.epoch).toMatch(EPOCH_PATTERN)
        expect(offsets(stored)).toEqual([1, 2, 3])
        expect(new Set(stored.map((message) => message.epoch)).size).toBe(1)
        expect(b1).toEqual({ channel: b, event: 'other', data: 'text', epoch: expect.any(String), offset: 1 })
      })

      it('gives 200 concurrent publishes the offsets 1..200, no hole, no repeat', async () => {
        const channel = freshChannel('concurrent')
        const stored = await Promise.all(range(1, 200).map((i) => broker.publish(channel, 'tick', { i })))
        expect(offsets(stored).sort((x, y) => x - y)).toEqual(range(1, 200))
        expect(new Set(stored.map((message) => message.epoch)).size).toBe(1)
        // Each message kept its own data.
        expect(new Set(stored.map((message) => (message.data as { i: number }).i)).size).toBe(200)
      })
    })

    describe('subscribe', () => {
      it('delivers to every listener in offset order, as stored', async () => {
        const channel = freshChannel('order')
        const first = await listen(channel)
        const second = await listen(channel)
        const stored = await publishInSequence(channel, 5)
        await expect.poll(() => first.got.length, poll).toBe(5)
        await expect.poll(() => second.got.length, poll).toBe(5)
        expect(first.got).toEqual(stored)
        expect(second.got).toEqual(stored)
      })

      it('delivers 200 concurrent publishes in offset order, each once', async () => {
        const channel = freshChannel('concurrent-delivery')
        const listener = await listen(channel)
        const stored = await Promise.all(range(1, 200).map((i) => broker.publish(channel, 'tick', { i })))
        await expect.poll(() => listener.got.length, poll).toBeGreaterThanOrEqual(200)
        expect(offsets(listener.got)).toEqual(range(1, 200))
        const byOffset = new Map(stored.map((message) => [message.offset, message]))
        for (const message of listener.got) expect(message).toEqual(byOffset.get(message.offset))
      })

      it('delivers every message published once subscribe has resolved, and none from before', async () => {
        const channel = freshChannel('from-now')
        await publishInSequence(channel, 2)
        const listener = await listen(channel)
        const third = await broker.publish(channel, 'tick', 'after')
        await expect.poll(() => listener.got.length, poll).toBeGreaterThanOrEqual(1)
        expect(listener.got).toEqual([third])
      })

      it('stops delivering to a listener that unsubscribed, and only to it', async () => {
        const channel = freshChannel('stop')
        const leaving = await listen(channel)
        const staying = await listen(channel)
        await broker.publish(channel, 'tick', 1)
        await expect.poll(() => leaving.got.length, poll).toBe(1)
        leaving.stop()
        await broker.publish(channel, 'tick', 2)
        await expect.poll(() => staying.got.length, poll).toBe(2)
        // Delivered to the listener that stayed: the one that left would have had it by now.
        expect(offsets(leaving.got)).toEqual([1])
      })

      it('keeps channels apart', async () => {
        const mine = freshChannel('mine')
        const other = freshChannel('other')
        const listener = await listen(mine)
        await broker.publish(other, 'tick', 'not for me')
        const own = await broker.publish(mine, 'tick', 'for me')
        await expect.poll(() => listener.got.length, poll).toBeGreaterThanOrEqual(1)
        expect(listener.got).toEqual([own])
      })
    })

    describe('recover (protocol.md 4)', () => {
      it('starts a new channel at offset 0, in the epoch its first message gets', async () => {
        const channel = freshChannel('new')
        const recovery = await broker.recover(channel, undefined)
        expect(recovery).toEqual({ epoch: expect.stringMatching(EPOCH_PATTERN), offset: 0, messages: [] })
        const first = await broker.publish(channel, 'tick', 1)
        expect(first).toMatchObject({ epoch: recovery.epoch, offset: 1 })
      })

      it('rule 1: without a position, the newest offset and no messages', async () => {
        const channel = freshChannel('rule1')
        const stored = await publishInSequence(channel, 3)
        const epoch = stored[0]?.epoch
        expect(await broker.recover(channel, undefined)).toEqual({ epoch, offset: 3, messages: [] })
      })

      it('rule 2: replays everything after a position whose successors are in history', async () => {
        const channel = freshChannel('rule2')
        const stored = await publishInSequence(channel, 5)
        const epoch = stored[0]?.epoch ?? ''
        expect(await broker.recover(channel, { epoch, offset: 2 })).toEqual({ epoch, offset: 2, messages: stored.slice(2) })
        expect(await broker.recover(channel, { epoch, offset: 0 })).toEqual({ epoch, offset: 0, messages: stored })
        expect(await broker.recover(channel, { epoch, offset: 5 })).toEqual({ epoch, offset: 5, messages: [] })
      })

      it('rule 2: a position older than history is a history-exhausted gap, then what history has', async () => {
        const channel = freshChannel('exhausted')
        const total = historySize + 10
        const stored = await Promise.all(range(1, total).map((i) => broker.publish(channel, 'tick', { i })))
        const epoch = stored[0]?.epoch ?? ''
        const recovery = await broker.recover(channel, { epoch, offset: 1 })
        expect(recovery.gap).toBe('history-exhausted')
        expect(recovery.epoch).toBe(epoch)
        expect(recovery.offset).toBeGreaterThan(1)
        expect(recovery.messages.length).toBeLessThanOrEqual(historySize)
        expect(offsets(recovery.messages)).toEqual(range(recovery.offset + 1, total))
      })

      it('rule 3: a position beyond the newest message is position-in-future', async () => {
        const channel = freshChannel('rule3')
        const stored = await publishInSequence(channel, 3)
        const epoch = stored[0]?.epoch ?? ''
        expect(await broker.recover(channel, { epoch, offset: 9 })).toEqual({
          epoch,
          offset: 3,
          messages: [],
          gap: 'position-in-future',
        })
      })

      it('rule 4: an unknown epoch is epoch-changed, replaying what the current epoch has', async () => {
        const channel = freshChannel('rule4')
        const stored = await publishInSequence(channel, 3)
        const epoch = stored[0]?.epoch ?? ''
        const unknown = epoch === 'unknown0' ? 'unknown1' : 'unknown0'
        expect(await broker.recover(channel, { epoch: unknown, offset: 2 })).toEqual({
          epoch,
          offset: 0,
          messages: stored,
          gap: 'epoch-changed',
        })
      })
    })

    describe('recover with a limit (paged replay)', () => {
      // The hub replays history in pages (hub/replay.ts): a broker returns at most `limit`
      // messages, the oldest first, with `more` set exactly when the channel has newer ones,
      // so that a resume never holds a channel's whole history at once.
      it('returns at most `limit` messages per page, and pages that join up to the newest', async () => {
        const channel = freshChannel('paged')
        const stored = await publishInSequence(channel, 7)
        const epoch = stored[0]?.epoch ?? ''
        const pages: StoredMessage[][] = []
        let since = { epoch, offset: 0 }
        for (let page = 0; page < 10; page++) {
          const recovery = await broker.recover(channel, since, { limit: 3 })
          expect(recovery.gap).toBeUndefined()
          expect(recovery.offset).toBe(since.offset)
          pages.push(recovery.messages)
          const last = recovery.messages.at(-1)
          if (!recovery.more || !last) break
          since = { epoch, offset: last.offset }
        }
        expect(pages.map(offsets)).toEqual([
          [1, 2, 3],
          [4, 5, 6],
          [7],
        ])
      })

      it('sets `more` only when newer messages were left out', async () => {
        const channel = freshChannel('paged-exact')
        const stored = await publishInSequence(channel, 4)
        const epoch = stored[0]?.epoch ?? ''
        const exact = await broker.recover(channel, { epoch, offset: 0 }, { limit: 4 })
        expect(exact.messages).toEqual(stored)
        expect(exact.more).toBeFalsy()
        const short = await broker.recover(channel, { epoch, offset: 0 }, { limit: 3 })
        expect(short).toMatchObject({ epoch, offset: 0, messages: stored.slice(0, 3), more: true })
        const caughtUp = await broker.recover(channel, { epoch, offset: 4 }, { limit: 3 })
        expect(caughtUp.messages).toEqual([])
        expect(caughtUp.more).toBeFalsy()
      })

      it('keeps the gap of the first page and pages what history has', async () => {
        const channel = freshChannel('paged-gap')
        const stored = await publishInSequence(channel, 5)
        const epoch = stored[0]?.epoch ?? ''
        const unknown = epoch === 'unknown0' ? 'unknown1' : 'unknown0'
        const first = await broker.recover(channel, { epoch: unknown, offset: 9 }, { limit: 2 })
        expect(first).toEqual({ epoch, offset: 0, messages: stored.slice(0, 2), gap: 'epoch-changed', more: true })
        const rest = await broker.recover(channel, { epoch, offset: 2 }, { limit: 10 })
        expect(rest).toMatchObject({ epoch, offset: 2, messages: stored.slice(2) })
        expect(rest.more).toBeFalsy()
      })

      it('pages a history that ran out, from its oldest message', async () => {
        const channel = freshChannel('paged-exhausted')
        const total = historySize + 5
        const stored = await publishInSequence(channel, total)
        const epoch = stored[0]?.epoch ?? ''
        const first = await broker.recover(channel, { epoch, offset: 1 }, { limit: 2 })
        expect(first.gap).toBe('history-exhausted')
        expect(first.more).toBe(true)
        expect(offsets(first.messages)).toEqual([first.offset + 1, first.offset + 2])
      })
    })

    describe('close', () => {
      it('makes later calls reject instead of hang', async () => {
        const channel = freshChannel('closed')
        await broker.publish(channel, 'tick', 1)
        await broker.close()
        closed = true
        await expect(broker.publish(channel, 'tick', 2)).rejects.toThrow()
        await expect(broker.recover(channel, undefined)).rejects.toThrow()
        await expect(broker.subscribe(channel, () => {})).rejects.toThrow()
      })
    })
  })
}
