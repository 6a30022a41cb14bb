import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { requireBinary } from './system-binary.js'
import { freePort } from './loopback-port.js'

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


function launch(port: number, extraArgs: readonly string[] = []): Promise<ChildProcess> {
  const child = spawn(
    requireBinary('redis-server'),
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning', ...extraArgs],
    { stdio: ['ignore', 'pipe', 'pipe'], cwd: tmpdir() },
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

/** A Redis Cluster of `masters` redis-servers (no replicas) on loopback ports, persistence off. */
export interface RedisCluster {
  readonly rootNodes: ReadonlyArray<{ url: string }>
  stop(): Promise<void>
}

export async function startRedisCluster(masters = 3): Promise<RedisCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'pushline-redis-cluster-'))
  const children: ChildProcess[] = []
  const ports: number[] = []
  const stop = async (): Promise<void> => {
    await Promise.all(
      children.map((child) => {
        if (child.exitCode !== null || child.signalCode !== null) return undefined
        const gone = new Promise((resolve) => child.once('exit', resolve))
        child.kill('SIGKILL')
        return gone
      }),
    )
    await rm(dir, { recursive: true, force: true })
  }
  try {
    for (let i = 0; i < masters; i++) {
      const port = await freePort()
      const args = ['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--dir', dir]
      children.push(await launch(port, args))
      ports.push(port)
    }
    const created = spawnSync(
      requireBinary('redis-cli'),
      ['--cluster', 'create', ...ports.map((port) => `127.0.0.1:${port}`), '--cluster-replicas', '0', '--cluster-yes'],
      { encoding: 'utf8', timeout: 30_000 },
    )
    if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`)
    // Every node must agree that all slots are served before clients connect.
    const started = Date.now()
    for (const port of ports) {
      for (;;) {
        const info = spawnSync(requireBinary('redis-cli'), ['-p', String(port), 'cluster', 'info'], { encoding: 'utf8' })
        if (info.stdout.includes('cluster_state:ok')) break
        if (Date.now() - started > 20_000) throw new Error(`cluster did not become ok: ${info.stdout}`)
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
    }
  } catch (error) {
    await stop()
    throw error
  }
  return { rootNodes: ports.map((port) => ({ url: `redis://127.0.0.1:${port}` })), stop }
}
