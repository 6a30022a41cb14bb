/**
 * The demo's Node worker (demo-server/worker.js): consumes a channel with `for await`, and goes on
 * consuming after the server restarts. It imports `pushline` (dist/), so it needs `npm run build`
 * first (as test/package does).
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { createPushServer } from '../../src/server/index.js'
import { freePort } from '../helpers/loopback-port.js'
import { waitFor } from '../helpers/push-fixture.js'

const workerPath = fileURLToPath(new URL('../../demo-server/worker.js', import.meta.url))

/** A push server with the in-memory broker on `port`: each start is a new epoch, as a restarted process. */
async function startServer(port: number) {
  const push = createPushServer({ heartbeatMs: 2000 })
  const http: Server = createServer()
  push.attach(http, { path: '/push' })
  await new Promise<void>((resolve) => http.listen(port, '127.0.0.1', resolve))
  return {
    push,
    async close() {
      await push.close()
      http.closeAllConnections()
      await new Promise<void>((resolve) => http.close(() => resolve()))
    },
  }
}

describe('demo-server/worker.js', () => {
  const cleanups: Array<() => unknown> = []
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  })

  it('consumes a channel in order with for await, and survives a server restart', { timeout: 60_000 }, async () => {
    const port = await freePort()
    let server = await startServer(port)
    cleanups.push(() => server.close())

    const worker = spawn(process.execPath, [workerPath, 'jobs'], {
      env: { ...process.env, PUSH_URL: `http://127.0.0.1:${port}/push` },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const exited = once(worker, 'exit')
    cleanups.push(async () => {
      if (worker.exitCode === null && worker.signalCode === null) {
        worker.kill('SIGKILL')
        await exited
      }
    })
    const lines: Array<{ id: string; data: { n: number; run: number } }> = []
    let stdout = ''
    let stderr = ''
    worker.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString()
      const complete = stdout.split('\n')
      stdout = complete.pop() ?? ''
      for (const line of complete) lines.push(JSON.parse(line))
    })
    worker.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    const received = (run: number) => lines.filter(({ data }) => data.run === run).map(({ data }) => data.n)

    /**
     * Publishes numbered jobs until the worker has `count` of this run: the first ones may go out
     * before the worker (re)subscribed, and a subscription without history starts live.
     */
    async function publishUntilReceived(run: number, count: number) {
      for (let n = 1; n <= 200 && received(run).length < count; n++) {
        await server.push.publish('jobs', { run, n })
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
      await waitFor(() => received(run).length >= count, `${count} jobs of run ${run} (stderr: ${stderr})`)
    }

    await publishUntilReceived(1, 5)
    const firstRun = received(1)
    // In order and once each: consecutive numbers.
    expect(firstRun).toEqual(Array.from({ length: firstRun.length }, (_, i) => (firstRun[0] ?? 0) + i))

    // The restart: the old server closes (the worker gets SERVER_SHUTDOWN), a new one (a new
    // epoch, its history empty) comes up on the same port.
    await server.close()
    server = await startServer(port)
    await publishUntilReceived(2, 5)
    const secondRun = received(2)
    expect(secondRun).toEqual(Array.from({ length: secondRun.length }, (_, i) => (secondRun[0] ?? 0) + i))
    expect(stderr).toMatch(/gap on jobs: epoch-changed/)
    expect(worker.exitCode).toBe(null)

    // SIGTERM closes the client, which ends the for-await loop; the worker exits by itself.
    worker.kill('SIGTERM')
    const [code] = await exited
    expect(code, stderr).toBe(0)
    expect(stderr).toMatch(/worker: done\n/)
  })
})
