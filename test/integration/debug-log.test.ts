import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { PushClient, type PushClientOptions } from '../../src/index.js'
import { cleanup, startPushFixture, type PushFixture } from '../helpers/push-fixture.js'

// The `debug` option: what a developer sees when asking the client what it does.

const memoryStorage = () => {
  const items = new Map<string, string>()
  return { getItem: (key: string) => items.get(key) ?? null, setItem: (key: string, value: string) => void items.set(key, value) }
}

type Line = [string, Record<string, unknown>]
const clients: PushClient[] = []
const client = (options: PushClientOptions): PushClient => {
  const made = new PushClient({ storage: memoryStorage(), lifecycle: null, ...options })
  clients.push(made)
  return made
}
const until = (condition: () => boolean): Promise<void> => vi.waitFor(() => expect(condition()).toBe(true), { timeout: 15_000 })

let fixture: PushFixture
let pollOnly: PushFixture
let downUrl: string

beforeAll(async () => {
  fixture = await startPushFixture()
  pollOnly = await startPushFixture({ transports: ['long-polling'] })
  const probe = http.createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  downUrl = `http://127.0.0.1:${(probe.address() as AddressInfo).port}/push`
  await new Promise<void>((resolve) => probe.close(() => resolve()))
}, 30_000)

afterEach(() => {
  for (const each of clients.splice(0)) each.close()
  vi.unstubAllEnvs()
  vi.restoreAllMocks()
})
afterAll(cleanup)

describe('debug', () => {
  it('logs each attempt, its failure with the cause, and the backoff delay', async () => {
    const lines: Line[] = []
    const made = client({ url: downUrl, transports: ['long-polling'], reconnect: { initialDelayMs: 100 }, random: () => 0.5, debug: (...line) => lines.push(line) })
    made.on('error', () => {})
    made.connect()
    await until(() => lines.some(([event]) => event === 'backoff'))
    expect(lines.slice(0, 5).map(([event, details]) => (event === 'state' ? `state ${details.state as string}` : event))).toEqual([
      'state connecting',
      'attempt',
      'failed',
      'backoff',
      'state reconnecting',
    ])
    expect(lines).toContainEqual(['attempt', { transport: 'long-polling', url: downUrl }])
    expect(lines).toContainEqual(['failed', expect.objectContaining({ transport: 'long-polling', code: 'TRANSPORT_FAILED', message: expect.stringMatching(/ECONNREFUSED/) })])
    // The built-in backoff, with the client's random: attempt 0 waits up to initialDelayMs.
    expect(lines).toContainEqual(['backoff', { attempt: 0, delayMs: 50 }])
  }, 20_000)

  it('logs the negotiation: the failed transport, the fallback, hello, open, and where a subscription resumed', async () => {
    const lines: Line[] = []
    const made = client({ url: pollOnly.directUrl, transports: ['websocket', 'long-polling'], debug: (...line) => lines.push(line) })
    made.subscribe('news')
    await made.ready(15_000)
    await until(() => lines.some(([event]) => event === 'subscribed'))
    expect(lines).toContainEqual(['attempt', { transport: 'websocket', url: pollOnly.directUrl }])
    expect(lines).toContainEqual(['fallback', expect.objectContaining({ from: 'websocket', to: 'long-polling' })])
    expect(lines).toContainEqual(['hello', expect.objectContaining({ transport: 'long-polling', offered: ['long-polling'] })])
    expect(lines).toContainEqual(['state', { state: 'open' }])
    expect(lines).toContainEqual(['subscribed', expect.objectContaining({ channel: 'news', position: expect.stringMatching(/^\w+-0$/) })])
  }, 20_000)

  it('logs gaps', async () => {
    const lines: Line[] = []
    const made = client({ url: fixture.directUrl, transports: ['websocket'], debug: (...line) => lines.push(line) })
    // A position in an epoch the server never had: resumed with a gap.
    made.subscribe('news', undefined, { since: 'nosuchepoch-5' })
    await made.ready(15_000)
    await until(() => lines.some(([event]) => event === 'gap'))
    expect(lines).toContainEqual(['gap', expect.objectContaining({ channel: 'news', reason: 'epoch-changed', from: 'nosuchepoch-5' })])
  }, 20_000)

  it('DEBUG=pushline turns it on, to console.debug', async () => {
    vi.stubEnv('DEBUG', 'express,pushline')
    const debug = vi.spyOn(console, 'debug').mockImplementation(() => {})
    await client({ url: fixture.directUrl, transports: ['websocket'] }).ready(15_000)
    expect(debug).toHaveBeenCalledWith('[pushline] attempt', { transport: 'websocket', url: fixture.directUrl })
  }, 20_000)

  it('is off by default, with DEBUG naming something else, and with debug: false', async () => {
    const debug = vi.spyOn(console, 'debug').mockImplementation(() => {})
    vi.stubEnv('DEBUG', 'pushlines')
    await client({ url: fixture.directUrl, transports: ['websocket'] }).ready(15_000)
    vi.stubEnv('DEBUG', 'pushline')
    await client({ url: fixture.directUrl, transports: ['websocket'], debug: false }).ready(15_000)
    expect(debug).not.toHaveBeenCalled()
  }, 20_000)
})
