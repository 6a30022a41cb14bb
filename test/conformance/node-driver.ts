import { PushClient, shortPolling, type PushError, type RegisteredTransportName, type Subscription } from '../../src/index.js'
import type { ClientDriver, ClientLog, ReceivedGap, ReceivedMessage } from './driver.js'

/** Drives a PushClient in this Node process. */
export function nodeDriver(): ClientDriver {
  let client: PushClient | undefined
  const messages = new Map<string, ReceivedMessage[]>()
  const gaps = new Map<string, ReceivedGap[]>()
  const subs = new Map<string, { unsubscribe(): void }>()
  const log: ClientLog = { states: [], transports: [], errors: [] }

  const need = () => {
    if (!client) throw new Error('driver: create() first')
    return client
  }

  return {
    async create(options) {
      client = new PushClient({
        url: options.url,
        // Short polls every 100 ms (default 3 s), as the suite's heartbeats are fast too.
        transports: [options.transport === 'short-polling' ? shortPolling({ intervalMs: 100 }) : (options.transport as RegisteredTransportName)],
        reconnect: { initialDelayMs: 50, maxDelayMs: 400 },
        ...(options.heartbeatGraceMs === undefined ? {} : { heartbeatGraceMs: options.heartbeatGraceMs }),
        ...(options.handshakeTimeoutMs === undefined ? {} : { handshakeTimeoutMs: options.handshakeTimeoutMs }),
        ...(options.publishTimeoutMs === undefined ? {} : { publishTimeoutMs: options.publishTimeoutMs }),
      })
      client.on('state', (s) => log.states.push(s))
      client.on('transport', (t) => log.transports.push(t))
      client.on('error', (e: PushError) => log.errors.push(e.code))
    },
    async connect() {
      need().connect()
    },
    async subscribe(channel, options) {
      const received: ReceivedMessage[] = []
      const seenGaps: ReceivedGap[] = []
      let sub: Subscription
      try {
        sub = need().subscribe(
          channel,
          (msg) => {
            received.push({ channel: msg.channel, event: msg.event, data: msg.data, offset: msg.offset, id: msg.id })
          },
          options,
        )
      } catch (error) {
        const err = error as PushError
        return { ok: false, code: err.code, message: err.message }
      }
      messages.set(channel, received)
      gaps.set(channel, seenGaps)
      sub.on('gap', (gap) => seenGaps.push({ ...gap }))
      subs.set(channel, sub)
      // Resolve once the server confirmed it, so "live from now" includes what the test publishes next.
      if (need().state === 'open') {
        await new Promise<void>((resolve) => {
          const off = sub.on('subscribed', () => {
            off()
            resolve()
          })
        })
      }
      return { ok: true }
    },
    async unsubscribe(channel) {
      subs.get(channel)?.unsubscribe()
      subs.delete(channel)
    },
    async publish(channel, data, options) {
      try {
        const ack = await need().publish(channel, data, options)
        return { ok: true, channel: ack.channel, offset: ack.offset, id: ack.id }
      } catch (error) {
        const err = error as PushError
        return { ok: false, code: err.code, message: err.message }
      }
    },
    async state() {
      return need().state
    },
    async transport() {
      return need().transport
    },
    async messages(channel) {
      return [...(messages.get(channel) ?? [])]
    },
    async gaps(channel) {
      return [...(gaps.get(channel) ?? [])]
    },
    async log() {
      return { states: [...log.states], transports: [...log.transports], errors: [...log.errors] }
    },
    async close() {
      client?.close()
      client = undefined
    },
  }
}
