/**
 * One pushline node as its own process (run by push-nodes.ts, bundled first):
 * a push server on a free loopback port with a RedisBroker. It sends its port
 * to the parent over IPC, then publishes what the parent asks and reports
 * how many requests it served per endpoint.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { RedisBroker } from '../../src/server/brokers/redis/index.js'
import { createPushServer } from '../../src/server/index.js'

export type NodeRequest =
  | { type: 'publish'; id: number; channel: string; data: unknown }
  | { type: 'stats'; id: number }
  | { type: 'presence'; id: number; channel: string }
  | { type: 'close'; id: number }

export type NodeReply =
  | { type: 'listening'; port: number }
  | { type: 'published'; id: number; offset: number; epoch: string }
  | { type: 'failed'; id: number; code: string; message: string }
  | { type: 'stats'; id: number; requests: Record<string, number> }
  | { type: 'presence'; id: number; members: string[] }
  | { type: 'closed'; id: number }

const send = (reply: NodeReply): void => void process.send?.(reply)

const redisUrl = process.env.PUSHLINE_REDIS_URL
const keyPrefix = process.env.PUSHLINE_KEY_PREFIX
const presenceTtlMs = Number(process.env.PUSHLINE_PRESENCE_TTL_MS) || undefined
const broker = redisUrl ? new RedisBroker({ url: redisUrl, keyPrefix, presenceTtlMs, logger: { error: () => {} } }) : undefined
// Channels named room:* track presence (test/integration/redis-presence.test.ts).
const presenceGraceMs = Number(process.env.PUSHLINE_PRESENCE_GRACE_MS || 5000)
const push = createPushServer({ broker, heartbeatMs: 2000, presence: (channel) => channel.startsWith('room:'), presenceGraceMs })
const requests: Record<string, number> = {}
const server = http.createServer()
push.attach(server, { path: '/push' })
// After attach, which takes over the request listeners it finds.
server.prependListener('request', (req: http.IncomingMessage) => {
  const endpoint = new URL(req.url ?? '/', 'http://x').pathname
  requests[endpoint] = (requests[endpoint] ?? 0) + 1
})
server.listen(0, '127.0.0.1', () => send({ type: 'listening', port: (server.address() as AddressInfo).port }))

process.on('message', (request: NodeRequest) => {
  switch (request.type) {
    case 'publish':
      push.publish(request.channel, request.data).then(
        ({ offset, epoch }) => send({ type: 'published', id: request.id, offset, epoch }),
        (error: { code?: string; message?: string }) =>
          send({ type: 'failed', id: request.id, code: error.code ?? 'UNKNOWN', message: error.message ?? '' }),
      )
      break
    case 'stats':
      send({ type: 'stats', id: request.id, requests })
      break
    case 'presence':
      push.presenceAcrossNodes(request.channel).then(
        (members) => send({ type: 'presence', id: request.id, members: members.map((member) => member.id) }),
        (error: { code?: string; message?: string }) =>
          send({ type: 'failed', id: request.id, code: error.code ?? 'UNKNOWN', message: error.message ?? '' }),
      )
      break
    case 'close':
      void push.close().then(() => {
        server.closeAllConnections()
        server.close(() => {
          send({ type: 'closed', id: request.id })
          process.exit(0)
        })
      })
      break
  }
})
// The parent went away (a crashed test run): don't linger.
process.on('disconnect', () => process.exit(0))
