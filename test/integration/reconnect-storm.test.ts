import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { afterEach, describe, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import { PushClient, websocket } from '../../src/index.js'
import type { WebSocketConstructor } from '../../src/index.js'
import { createPushServer } from '../../src/server/index.js'
import type { PushServer } from '../../src/server/index.js'
import { sleep, waitFor } from '../helpers/push-fixture.js'

// Reconnect storm (issue 11): clients on one server; the server restarts on the same port
// (gracefully: each client gets a `close` frame with a retryMs in [0, 2 s)), with an accept rate
// below the clients' count, so some reconnects are refused with RATE_LIMITED and their retryMs.
// Asserted: every client comes back (it receives a message published after the restart), and the
// clients' reconnect attempts are spread by the jitter over several 250 ms buckets. Reported, not
// asserted (the machine is shared): the time until all were back, the arrival histogram of
// upgrades at the new server, the worst event-loop stall of this process (server and clients).
//
// `npm test` runs 400 clients; `npm run test:storm` runs 3,000 (PUSHLINE_STORM_CLIENTS), too many
// for the shared test run: connecting them alone takes the accept rate's 6 s, and 3,000 clients
// and the server in one process load a core.

const CLIENTS = Number(process.env.PUSHLINE_STORM_CLIENTS ?? 400)
/** The default accept rate (500/s) for 3,000; for fewer, a third of them a second, so that some are refused. */
const ACCEPT_RATE = Math.min(500, Math.ceil(CLIENTS / 3))
const BUCKET_MS = 250
/** A bound on each phase, generous for a loaded machine: all connected, all back. */
const PHASE_MS = 30_000 + CLIENTS * 30

interface StormServer {
  push: PushServer
  server: http.Server
  /** Upgrade requests per 250 ms since the server started. */
  arrivals: number[]
}

async function startServer(port: number): Promise<StormServer> {
  // Every client is on 127.0.0.1: the per-address limit (1,000 by default) would refuse all past it.
  const push = createPushServer({ logger: { error: () => {} }, maxConnectsPerSecond: ACCEPT_RATE, maxConnectionsPerIp: 1_000_000 })
  const server = http.createServer()
  const startedAt = Date.now()
  const arrivals: number[] = []
  server.on('upgrade', () => {
    const bucket = Math.floor((Date.now() - startedAt) / BUCKET_MS)
    arrivals[bucket] = (arrivals[bucket] ?? 0) + 1
  })
  push.attach(server)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', resolve)
  })
  return { push, server, arrivals }
}

async function stopServer({ push, server }: StormServer): Promise<void> {
  // Stop accepting first: clients told to come back at once must find the port closed, not a server
  // whose push endpoints are gone.
  const closed = new Promise<void>((resolve) => server.close(() => resolve()))
  await push.close()
  server.closeAllConnections()
  await closed
}

function histogram(sparse: number[]): string {
  const counts = Array.from(sparse, (count) => count ?? 0)
  const most = Math.max(1, ...counts)
  return counts
    .map((count, i) => `${String(i * BUCKET_MS).padStart(6)} ms ${String(count).padStart(5)} ${'#'.repeat(Math.ceil((count / most) * 40))}`)
    .filter((_, i) => (counts[i] as number) > 0)
    .join('\n')
}

const clients: PushClient[] = []
let current: StormServer | undefined

afterEach(async () => {
  for (const client of clients.splice(0)) client.close()
  if (current) await stopServer(current)
  current = undefined
})

describe('reconnect storm', () => {
  it(
    `${CLIENTS} clients come back after a server restart, their reconnects spread by the jitter`,
    async () => {
      current = await startServer(0)
      const { port } = current.server.address() as AddressInfo
      const url = `http://127.0.0.1:${port}/push`
      /** When each client opened a WebSocket (its attempts), by the clock of this process. */
      const attempts: number[] = []
      const CountingWebSocket = class extends WebSocket {
        constructor(address: string, protocols?: string | string[]) {
          super(address, protocols)
          attempts.push(Date.now())
        }
      } as unknown as WebSocketConstructor
      const lastData: unknown[] = new Array(CLIENTS).fill(undefined)
      for (let i = 0; i < CLIENTS; i++) {
        const client = new PushClient({ url, transports: [websocket()], WebSocket: CountingWebSocket })
        client.subscribe('storm', (message) => {
          lastData[i] = message.data
        })
        client.connect()
        clients.push(client)
        // The first connect paced under the accept rate: the reconnect is what this measures.
        if (i % 50 === 49) await sleep((50 / ACCEPT_RATE) * 1000 * 1.25)
      }
      const open = () => clients.filter((client) => client.state === 'open').length
      await waitFor(() => open() === CLIENTS, 'every client to connect', PHASE_MS)

      const loop = monitorEventLoopDelay({ resolution: 10 })
      const restartedAt = Date.now()
      const attemptsBefore = attempts.length
      await stopServer(current)
      loop.enable()
      current = await startServer(port)
      await waitFor(() => open() === CLIENTS, 'every client to reconnect', PHASE_MS)
      await current.push.publish('storm', 'after-restart')
      await waitFor(() => lastData.every((data) => data === 'after-restart'), 'every client to get the message', PHASE_MS)
      const backMs = Date.now() - restartedAt
      loop.disable()

      const reconnects = attempts.slice(attemptsBefore).map((at) => Math.floor((at - restartedAt) / BUCKET_MS))
      const byBucket: number[] = []
      for (const bucket of reconnects) byBucket[bucket] = (byBucket[bucket] ?? 0) + 1
      const upgrades = current.arrivals.reduce((sum, count) => sum + (count ?? 0), 0)
      console.log(
        `reconnect storm: ${CLIENTS} clients, accept rate ${ACCEPT_RATE}/s: all back with a message published after the restart in ${backMs} ms; ` +
          `${reconnects.length} reconnect attempts, ${upgrades} upgrades at the new server (${upgrades - CLIENTS} refused or failed); ` +
          `worst event-loop stall of this process (server and clients) ${(loop.max / 1e6).toFixed(0)} ms, p99 ${(loop.percentile(99) / 1e6).toFixed(0)} ms\n` +
          `reconnect attempts per ${BUCKET_MS} ms after the restart began:\n${histogram(byBucket)}\n` +
          `upgrade requests per ${BUCKET_MS} ms at the new server:\n${histogram(current.arrivals)}`,
      )

      // Every client came back, and no more than once per client got through (each holds one connection).
      expect(open()).toBe(CLIENTS)
      expect(current.push.stats().connections).toBe(CLIENTS)
      // Spread by the jitter: several buckets, none with most of the attempts.
      const used = Array.from(byBucket, (count) => count ?? 0).filter((count) => count > 0)
      expect(used.length).toBeGreaterThanOrEqual(4)
      expect(Math.max(...used)).toBeLessThan(reconnects.length / 2)
    },
    3 * PHASE_MS + 30_000,
  )
})
