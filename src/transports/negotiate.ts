import type { Emitter } from 'nanoevents'
import type { PushError } from '../errors.js'
import { PROTOCOL_VERSION, type HelloFrame, type ServerFrame, type TransportName } from '../protocol/frames.js'
import type {
  FallbackEvent,
  FallbackReason,
  Negotiation,
  StorageLike,
  Timers,
  Transport,
  TransportFactory,
} from './transport.js'

// Negotiation among several transports (protocol.md 7): the order of a round, falling back on
// failure, the winner remembered per server URL, and upgrade probes. The factories of the fallback
// transports carry it (`TransportFactory.negotiate`), so a client with WebSocket only never
// bundles it; the core asks it at the points its `Plan` describes. It lives beside the transports
// because they carry it; the client core only imports its types.
//
// Internal records here use `_`-prefixed properties, which the build shortens (tsup.config.ts).

/**
 * One transport being opened: the connection, or an upgrade probe. Its callbacks reach the core
 * only while it is the connection; before that they go to `_onProbeFrame` and `_onProbeEnd`.
 */
export interface Attempt {
  readonly _factory: TransportFactory
  _transport?: Transport
  /** A frame while not the connection. */
  readonly _onProbeFrame?: (frame: ServerFrame) => void
  /** The end while not the connection. */
  readonly _onProbeEnd?: () => void
  /** Given up: not to be opened any more (its token may still be on its way). */
  _abandoned?: boolean
}

/** A negotiation among several transports, made per client by {@link negotiate}. */
export interface Plan {
  /** Starts a round: the next attempt tries the best transport first. */
  _round(): void
  /** The transport to try now. */
  _factory(): TransportFactory
  /** The connection said `hello` (also when it does not offer the connection's transport). */
  _opened(name: TransportName, offered: TransportName[]): void
  /**
   * The connection ended (torn down already): start the next transport (`start`) and return true,
   * or return false to back off and start a new round. Not asked about normal closes after a
   * server's `retryMs`, refused tokens, or while offline: another transport fixes none of them.
   */
  _ended(failure: PushError | undefined, wasOpen: boolean, reason?: FallbackReason): boolean
  /** Stops background work (upgrade probes); the connection is being torn down. */
  _stop(): void
}

/**
 * The client's options that a negotiation reads (a subset of `CoreClientOptions`). The defaults of
 * those only a negotiation reads are written here, so that a client without negotiation does not
 * bundle them; `handshakeTimeoutMs` and `timers` come resolved by the core.
 */
export interface NegotiationOptions {
  readonly url: string
  readonly transports: readonly TransportFactory[]
  readonly unstableMs?: number | undefined
  readonly upgradeProbeMs?: number | undefined
  readonly rememberMs?: number | undefined
  readonly storage?: StorageLike | undefined
}

/**
 * What the core lends a negotiation, as arguments: a client with one transport never bundles
 * negotiation, and this call is all it costs it.
 */
export type Negotiate = (
  options: NegotiationOptions,
  handshakeTimeoutMs: number,
  timers: Timers,
  events: Emitter<{ fallback: (event: FallbackEvent) => void }>,
  /** The connection, opening or open. */
  current: () => Attempt | undefined,
  /** Opens an attempt that is not the connection (yet). */
  launch: (attempt: Attempt) => void,
  /** An attempt said `hello`: it becomes the connection, and the old one closes. */
  adopt: (attempt: Attempt, hello: HelloFrame) => void,
  /** Starts an attempt with the negotiation's current transport (`Plan._factory`). */
  start: () => void,
  /** Whether the client was closed or moved on since `attempt` was the connection. */
  moved: (attempt: Attempt | undefined) => boolean,
) => Plan

/**
 * What is remembered per server URL: the transport that won, what the server offers, until when.
 * Stored (JSON in `storage`), so its fields keep their short names: the build never renames them,
 * and a page of the next release reads what this one wrote.
 */
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

const negotiatePlan: Negotiate = (options, handshakeTimeoutMs, timers, events, connection, launch, adopt, start, moved) => {
  const {
    url,
    transports: factories,
    unstableMs = 5000,
    upgradeProbeMs = 60_000,
    rememberMs = 3_600_000,
    storage = defaultStorage,
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
  let probe: (Attempt & { _rank: number }) | undefined
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
    return current ? factories.slice(0, factories.indexOf(current._factory)).filter(({ name }) => offered.includes(name)) : []
  }

  /** Opens the `rank`-th better transport in the background; the first to say hello wins. */
  const runProbe = (rank: number): void => {
    const factory = better()[rank]
    if (!factory) return scheduleProbe()
    const attempt: Attempt & { _rank: number } = (probe = {
      _factory: factory,
      _rank: rank,
      _onProbeFrame(frame) {
        if (attempt !== probe) return
        const name = factory.name
        if (frame.type !== 'hello' || frame.v !== PROTOCOL_VERSION || !frame.transports.includes(name)) return probeFailed()
        // The probe is live: it becomes the connection, and the old one closes. Subscriptions
        // resume on it from their positions, publishes in flight are resent with their keys, and
        // dedupe by offset drops what both delivered.
        events.emit('fallback', { from: (connection() as Attempt)._factory.name, to: name, reason: 'upgrade' })
        if (attempt !== probe) return // a listener closed the client
        probe = undefined
        adopt(attempt, frame)
        round()
      },
      _onProbeEnd: () => attempt === probe && probeFailed(),
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
    if (old) old._abandoned = true
    old?._transport?.close()
  }

  /** A failed probe changes nothing: the next better transport is probed, or the next round scheduled. */
  const probeFailed = (): void => {
    const rank = (probe as { _rank: number })._rank
    stopProbe()
    runProbe(rank + 1)
  }

  return {
    _round: round,
    _factory: () => order[index] as TransportFactory,
    _opened(name, list) {
      offered = list
      openedAt = timers.now()
      remember(list.includes(name) ? name : known()?.w, list)
      scheduleProbe()
    },
    _ended(failure, wasOpen, reason?: FallbackReason) {
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
    _stop: stopProbe,
  }
}

/**
 * Negotiation among several transports: what a custom fallback transport's factory sets as its
 * `negotiate` (the built-in fallback transports carry it already).
 */
export const negotiate = negotiatePlan as unknown as Negotiation

