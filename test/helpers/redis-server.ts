import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import net from 'node:net'

/**
 * Whether a system binary the tests need is installed. When it is not, prints
 * ONE line naming it and its install command, and the caller skips its tests;
 * under CI=true a missing binary fails instead (CI installs them all).
 * Shaped like the shared `requireBinary` the infra work adds, to switch to it.
 */
export function requireBinary(name: string, installCommand: string): boolean {
  const found = spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0
  if (found) return true
  const line = `${name} not found: its tests are skipped (install: ${installCommand})`
  if (process.env.CI === 'true') throw new Error(line)
  console.warn(line)
  return false
}

export const hasRedisServer = (): boolean =>
  requireBinary('redis-server', 'apt-get install -y --no-install-recommends redis-server')

/** A redis-server the test started on a loopback port, persistence off. */
export interface RedisServer {
  readonly port: number
  readonly url: string
  /** Kills it (SIGKILL, by pid): clients see the connection drop, nothing is saved. */
  stop(): Promise<void>
  /** Starts it again on the same port, empty. */
  start(): Promise<void>
  /** Freezes it (SIGSTOP): connections stay open and nothing answers, like a hung server. */
  freeze(): void
  /** Lets a frozen server go on (SIGCONT). */
  thaw(): void
}

async function freePort(): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

function launch(port: number): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  return new Promise((resolve, reject) => {
    let output = ''
    const timer = setTimeout(() => done(new Error(`redis-server did not start on ${port}: ${output}`)), 10_000)
    const poll = setInterval(() => {
      const socket = net.connect(port, '127.0.0.1')
      socket.once('connect', () => {
        socket.destroy()
        done()
      })
      socket.once('error', () => socket.destroy())
    }, 25)
    const done = (error?: Error): void => {
      clearTimeout(timer)
      clearInterval(poll)
      child.off('exit', onExit)
      if (error) {
        child.kill('SIGKILL')
        reject(error)
      } else resolve(child)
    }
    const onExit = (): void => done(new Error(`redis-server exited: ${output}`))
    child.on('exit', onExit)
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()))
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()))
  })
}

export async function startRedisServer(): Promise<RedisServer> {
  let port = 0
  let child: ChildProcess | undefined
  for (let attempt = 0; !child; attempt++) {
    port = await freePort()
    try {
      child = await launch(port)
    } catch (error) {
      // Another process took the port between the probe and the launch.
      if (attempt >= 3) throw error
    }
  }
  const server: RedisServer = {
    port,
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      const running = child
      child = undefined
      if (!running || running.exitCode !== null || (running.signalCode !== null && running.signalCode !== 'SIGSTOP')) return
      const gone = new Promise((resolve) => running.once('exit', resolve))
      running.kill('SIGKILL')
      await gone
    },
    async start() {
      if (child) return
      child = await launch(port)
    },
    freeze() {
      child?.kill('SIGSTOP')
    },
    thaw() {
      child?.kill('SIGCONT')
    },
  }
  return server
}
