/**
 * What the client does when the network or the server fails, through a TCP relay: a relay that
 * cuts every link 1 s after it opened (every loss of the connection is reported as
 * `reconnecting`, and `open` always comes with a transport), and a server unreachable for 3 s (an
 * outage: no transport is blamed, the remembered winner stays, and the client is back within the
 * backoff bound).
 */
import { afterEach, expect, it } from 'vitest'
import { PushClient, type ClientState, type FallbackEvent } from '../../src/index.js'
import { cleanup, sleep, startPushFixture, waitFor } from '../helpers/push-fixture.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'

const closers: Array<() => unknown> = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
  await cleanup()
})

function memoryStorage() {
  const items = new Map<string, string>()
  return { items, getItem: (key: string) => items.get(key) ?? null, setItem: (key: string, value: string) => void items.set(key, value) }
}

/** A client that records its states, fallbacks and errors, and every `open` without a transport. */
function recordedClient(url: string, storage = memoryStorage()) {
  const client = new PushClient({ url, storage, reconnect: { initialDelayMs: 100, maxDelayMs: 1000 } })
  closers.push(() => client.close())
  const log = { states: [] as ClientState[], fallbacks: [] as FallbackEvent[], errors: [] as string[], lies: [] as string[] }
  client.on('state', (state) => {
    log.states.push(state)
    if ((state === 'open') !== (client.transport !== undefined)) log.lies.push(`${state} with ${client.transport}`)
  })
  client.on('fallback', (event) => log.fallbacks.push(event))
  client.on('error', (error) => log.errors.push(`${error.transport}: ${error.code}`))
  return { client, log, storage }
}

it('reports every loss of the connection as reconnecting behind a relay that cuts each link after 1 s', async () => {
  const fixture = await startPushFixture({ heartbeatMs: 500 })
  const relay = await startTcpProxy(Number(new URL(fixture.origin).port), { cutAfterMs: 1000 })
  closers.push(() => relay.close())
  const { client, log } = recordedClient(`http://127.0.0.1:${relay.port}/push`)
  client.subscribe('feed')
  client.connect()
  await waitFor(() => log.states.filter((state) => state === 'open').length >= 4, 'four connections', 30_000)
  client.close()

  // idle → connecting → open, then every loss: reconnecting before the next open.
  const opens = log.states.flatMap((state, i) => (state === 'open' ? [i] : []))
  for (const i of opens) expect(log.states[i + 1] ?? 'closed').toMatch(/^(reconnecting|closed)$/)
  expect(log.lies).toEqual([])
  // Each lost connection was short-lived: the transports were demoted for it, once a later one said hello.
  expect(log.fallbacks.filter((event) => event.reason === 'unstable').length).toBeGreaterThan(0)
  console.log(`relay cutting every link after 1 s: states ${log.states.join(' ')}; fallbacks ${JSON.stringify(log.fallbacks)}`)
}, 40_000)

it('blames no transport and keeps the remembered winner while the server is unreachable for 3 s', async () => {
  const fixture = await startPushFixture({ heartbeatMs: 2000 })
  const { client, log, storage } = recordedClient(fixture.url)
  client.subscribe('feed')
  client.connect()
  await waitFor(() => client.state === 'open', 'open', 10_000)
  expect(client.transport).toBe('websocket')
  const [memoryKey] = [...storage.items.keys()]
  const remembered = JSON.parse(storage.items.get(memoryKey as string) as string) as { w: string }
  expect(remembered.w).toBe('websocket')
  await sleep(500)

  // The server goes away: open links are reset, new ones are closed before any HTTP response.
  fixture.proxy.refuse(true)
  fixture.proxy.cutAll()
  const stoppedAt = Date.now()
  let backAt = 0
  // It comes back at the end of a failed round (a round of refused attempts takes milliseconds,
  // the backoff between rounds up to maxDelayMs): so that the test does not depend on whether
  // the restart falls inside a round.
  client.on('error', (error) => {
    if (!backAt && Date.now() - stoppedAt >= 3000 && error.transport === 'short-polling') {
      backAt = Date.now()
      fixture.proxy.refuse(false)
    }
  })
  await waitFor(() => backAt > 0 && client.state === 'open', 'back after the outage', 20_000)
  const backMs = Date.now() - backAt

  expect(log.fallbacks).toEqual([])
  expect(client.transport).toBe('websocket')
  expect(JSON.parse(storage.items.get(memoryKey as string) as string).w).toBe('websocket')
  // The failures were reported as errors, with their cause.
  expect(log.errors.length).toBeGreaterThan(4)
  expect(log.states).toEqual(['connecting', 'open', 'reconnecting', 'open'])
  expect(log.lies).toEqual([])
  // Back within the backoff bound (maxDelayMs 1000), plus a handshake.
  expect(backMs).toBeLessThan(1000 + 4000)
  console.log(`outage of ${backAt - stoppedAt} ms: back ${backMs} ms after the server was; ${log.errors.length} errors, no fallbacks`)
}, 40_000)
