import { PROTOCOL_VERSION, type TransportName } from '../protocol/frames.js'
import type { TransportFactory } from '../transports/transport.js'
import type { Attempt, FallbackReason, Negotiate } from './client.js'
import type { StorageLike } from './options.js'

// Negotiation among several transports (protocol.md 7): the order of a round, falling back on
// failure, the winner remembered per server URL, and upgrade probes. The factories of the fallback
// transports carry it (`TransportFactory.negotiate`), so a client with WebSocket only never
// bundles it; the core asks it at the points its `Plan` describes.

/** What is remembered per server URL: the transport that won, what the server offers, until when. */
interface Memory {
  w?: TransportName | undefined
  o: TransportName[]
  u: number
}

const memoryStore: Record<string, string> = {}
/** localStorage where it works (touching it throws in sandboxed frames, or with storage blocked), else memory. */
const defaultStorage: StorageLike = {
  getItem(key) {
    try {
      return localStorage.getItem(key)
    } catch {
      return memoryStore[key] ?? null
    }
  },
  setItem(key, value) {
    try {
      localStorage.setItem(key, value)
    } catch {
      memoryStore[key] = value
    }
  },
}

export const negotiate: Negotiate = (options, timers, events, connection, launch, adopt, start, moved) => {
  const {
    url,
    transports: factories,
    unstableMs = 5000,
    upgradeProbeMs = 60_000,
    rememberMs = 3_600_000,
    storage = defaultStorage,
    handshakeTimeoutMs = 4000,
  } = options
  const memoryKey = 'pushline:' + url
  let memory: Memory | undefined
  try {
    memory = JSON.parse(storage.getItem(memoryKey) as string) as Memory
  } catch {
    // nothing remembered, or storage unusable
  }
  /** This round's transports in the order they are tried, and the index of the current one. */
  let order: TransportFactory[] = []
  let index = 0
  /** What the connection's `hello` offers, and when it came. */
  let offered: TransportName[] = []
  let openedAt = 0
  /** An upgrade probe: a better transport opened in the background. */
  let probe: (Attempt & { r: number }) | undefined
  let probeTimer: unknown

  const known = (): Memory | undefined => (memory && memory.u > timers.now() && Array.isArray(memory.o) ? memory : undefined)
  /** Whether the server offers this transport, as far as we know. */
  const offers = ({ name }: TransportFactory): boolean => known()?.o.includes(name) ?? true

  /** Starts a round: the transports the server offers, the last winner first, the others in their order. */
  const round = (): void => {
    const won = known()?.w
    const listed = factories.filter(offers)
    // A server that offers none of ours may have changed its mind since: try them all.
    order = (listed.length ? listed : [...factories]).sort((a, b) => +(b.name === won) - +(a.name === won))
    index = 0
  }

  const remember = (won: TransportName | undefined, list: TransportName[]): void => {
    memory = { w: won, o: list, u: timers.now() + rememberMs }
    try {
      storage.setItem(memoryKey, JSON.stringify(memory))
    } catch {
      // remembered in this client only
    }
  }

  // ---- upgrade probes ----

  /** Transports listed before the connection's that the server offers. */
  const better = (): TransportFactory[] => {
    const current = connection()
    return current ? factories.slice(0, factories.indexOf(current.f)).filter(({ name }) => offered.includes(name)) : []
  }

  /** Opens the `rank`-th better transport in the background; the first to say hello wins. */
  const runProbe = (rank: number): void => {
    const factory = better()[rank]
    if (!factory) return scheduleProbe()
    const attempt: Attempt & { r: number } = (probe = {
      f: factory,
      r: rank,
      p(frame) {
        if (attempt !== probe) return
        const name = factory.name
        if (frame.type !== 'hello' || frame.v !== PROTOCOL_VERSION || !frame.transports.includes(name)) return probeFailed()
        // The probe is live: it becomes the connection, and the old one closes. Subscriptions
        // resume on it from their positions, publishes in flight are resent with their keys, and
        // dedupe by offset drops what both delivered.
        events.emit('fallback', { from: (connection() as Attempt).f.name, to: name, reason: 'upgrade' })
        if (attempt !== probe) return // a listener closed the client
        probe = undefined
        adopt(attempt, frame)
        round()
      },
      q: () => attempt === probe && probeFailed(),
    })
    probeTimer = timers.setTimeout(() => attempt === probe && probeFailed(), handshakeTimeoutMs)
    launch(attempt)
  }

  const scheduleProbe = (): void => {
    if (upgradeProbeMs > 0 && better().length) probeTimer = timers.setTimeout(() => runProbe(0), upgradeProbeMs)
  }

  const stopProbe = (): void => {
    timers.clearTimeout(probeTimer)
    const old = probe
    probe = undefined
    if (old) old.z = true
    old?.t?.close()
  }

  /** A failed probe changes nothing: the next better transport is probed, or the next round scheduled. */
  const probeFailed = (): void => {
    const rank = (probe as { r: number }).r
    stopProbe()
    runProbe(rank + 1)
  }

  return {
    r: round,
    f: () => order[index] as TransportFactory,
    h(name, list) {
      offered = list
      openedAt = timers.now()
      remember(list.includes(name) ? name : known()?.w, list)
      scheduleProbe()
    },
    d(failure, wasOpen, reason?: FallbackReason) {
      const from = (order[index] as TransportFactory).name
      reason ??= wasOpen
        ? timers.now() - openedAt < unstableMs
          ? 'unstable'
          : undefined
        : failure?.code === 'HANDSHAKE_TIMEOUT'
          ? 'handshake-timeout'
          : 'handshake-failed'
      const to = order.slice(index + 1).find(offers)
      if (!reason || !to) return false
      index = order.indexOf(to)
      events.emit('fallback', { from, to: to.name, reason })
      if (!moved(undefined)) start()
      return true
    },
    x: stopProbe,
  }
}
