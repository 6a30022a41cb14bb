import { fork, type ChildProcess } from 'node:child_process'
import { mkdir } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import type { NodeReply, NodeRequest } from './push-node-process.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
/** Inside the repository, so the bundle's imports of packages resolve from its node_modules. */
const bundlePath = join(root, 'node_modules', '.cache', 'pushline-test', 'push-node-process.mjs')
let bundled: Promise<void> | undefined

/** Bundles push-node-process.ts from the sources once per test process (Node 20 cannot run TypeScript). */
function bundle(): Promise<void> {
  bundled ??= (async () => {
    await mkdir(dirname(bundlePath), { recursive: true })
    await build({
      entryPoints: [join(root, 'test', 'helpers', 'push-node-process.ts')],
      outfile: bundlePath,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      packages: 'external',
      logLevel: 'error',
    })
  })()
  return bundled
}

/** A pushline server in a child process. */
export interface PushNode {
  readonly pid: number
  readonly port: number
  readonly url: string
  publish(channel: string, data: unknown): Promise<{ offset: number; epoch: string }>
  /** Requests served, by path. */
  requests(): Promise<Record<string, number>>
  /** Member ids of a presence channel (`room:*`) on every node, as this node reads them. */
  presence(channel: string): Promise<string[]>
  /** `kill -9`: no close frames, no cleanup. */
  kill(): void
  close(): Promise<void>
}

export async function startPushNode(env: {
  redisUrl?: string
  keyPrefix?: string
  presenceTtlMs?: number
  presenceGraceMs?: number
}): Promise<PushNode> {
  await bundle()
  const child: ChildProcess = fork(bundlePath, [], {
    env: {
      ...process.env,
      PUSHLINE_REDIS_URL: env.redisUrl ?? '',
      PUSHLINE_KEY_PREFIX: env.keyPrefix ?? 'pushline:',
      PUSHLINE_PRESENCE_TTL_MS: String(env.presenceTtlMs ?? ''),
      PUSHLINE_PRESENCE_GRACE_MS: String(env.presenceGraceMs ?? ''),
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const pending = new Map<number, (reply: NodeReply) => void>()
  let nextId = 0
  let exited = false
  child.on('exit', () => {
    exited = true
    for (const resolve of pending.values()) resolve({ type: 'failed', id: -1, code: 'EXITED', message: 'node exited' })
    pending.clear()
  })
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('push node did not start')), 15_000)
    child.on('message', (reply: NodeReply) => {
      if (reply.type === 'listening') {
        clearTimeout(timer)
        resolve(reply.port)
      } else if ('id' in reply) {
        pending.get(reply.id)?.(reply)
        pending.delete(reply.id)
      }
    })
    child.once('exit', () => reject(new Error('push node exited before listening')))
  })
  const ask = (request: Omit<NodeRequest, 'id'> & { type: NodeRequest['type'] }): Promise<NodeReply> => {
    if (exited) return Promise.resolve({ type: 'failed', id: -1, code: 'EXITED', message: 'node exited' })
    const id = ++nextId
    return new Promise((resolve) => {
      pending.set(id, resolve)
      child.send({ ...request, id })
    })
  }
  return {
    pid: child.pid ?? 0,
    port,
    url: `http://127.0.0.1:${port}/push`,
    async publish(channel, data) {
      const reply = await ask({ type: 'publish', channel, data } as NodeRequest)
      if (reply.type !== 'published') throw Object.assign(new Error(`publish failed: ${JSON.stringify(reply)}`), reply)
      return { offset: reply.offset, epoch: reply.epoch }
    },
    async presence(channel) {
      const reply = await ask({ type: 'presence', channel } as NodeRequest)
      if (reply.type !== 'presence') throw Object.assign(new Error(`presence failed: ${JSON.stringify(reply)}`), reply)
      return reply.members
    },
    async requests() {
      const reply = await ask({ type: 'stats' } as NodeRequest)
      return reply.type === 'stats' ? reply.requests : {}
    },
    kill() {
      if (!exited) child.kill('SIGKILL')
    },
    async close() {
      if (exited) return
      const gone = new Promise((resolve) => child.once('exit', resolve))
      await Promise.race([ask({ type: 'close' } as NodeRequest), new Promise((resolve) => setTimeout(resolve, 5000))])
      if (!exited) child.kill('SIGKILL')
      await gone
    },
  }
}
