/**
 * `pushline/react`: React bindings on `useSyncExternalStore`. One ref-counted store per client and
 * one per (client, channel) hold what the hooks read, so every component using a channel shares
 * one `client.subscribe()`, and StrictMode's immediate effect re-run neither resubscribes nor
 * reconnects. Imports only types from pushline: this entry adds no client code to a bundle.
 */
import {
  createContext,
  createElement,
  useCallback,
  useContext,
  useEffect,
  useInsertionEffect,
  useMemo,
  useRef,
  useSyncExternalStore,
  type ReactNode,
} from 'react'
import type {
  ChannelDefinition,
  ClientState,
  GapInfo,
  InferOutput,
  InvalidMessage,
  StandardSchemaV1,
  PushClient,
  PushError,
  PushMessage,
  Subscription,
  TransportName,
} from '../index.js'

export interface PushProviderProps {
  /** The client the hooks below use. */
  client: PushClient
  /**
   * Connect the client on mount, and close it on unmount if this provider opened it. With
   * `false` the app calls `connect()` and `close()` itself.
   * @default true
   */
  autoConnect?: boolean
  /**
   * The tree whose `usePush` calls use `client`.
   * @default undefined
   */
  children?: ReactNode
}

export interface UsePushOptions<T = unknown> {
  /**
   * Subscribe to the channel; with `false` the hook reports only the client's status.
   * @default true
   */
  enabled?: boolean
  /**
   * Start with the channel's newest `rewind` messages from history (the client's subscribe option
   * of that name): `data` shows the last value at once instead of waiting for the next message,
   * and `onMessage` gets each. Read when the channel's subscription starts: components that share
   * it (one channel, one client) get what the first one asked for, and changing it later does not
   * resubscribe.
   * @default undefined (no rewind: live from now)
   */
  rewind?: number
  /**
   * Only messages with this event name update `data` and call `onMessage`.
   * @default undefined (every message)
   */
  event?: string
  /**
   * Called for each (matching) message. The latest function is used; changing it does not resubscribe.
   * @default undefined
   */
  onMessage?: (message: PushMessage<T>) => void
  /**
   * Called when messages of the channel were lost (protocol.md 4.1).
   * @default undefined
   */
  onGap?: (gap: GapInfo) => void
  /**
   * With a channel from `defineChannel`: called for a message whose data failed the channel's
   * schema (it updates neither `data` nor `message`).
   * @default undefined
   */
  onInvalid?: (invalid: InvalidMessage) => void
}

export interface PushState<T = unknown> {
  /** `message.data`: undefined until a (matching) message arrived. */
  data: T | undefined
  /** The last (matching) message since the channel was subscribed. */
  message: PushMessage<T> | undefined
  /** The client's connection state. */
  status: ClientState
  /** The transport of the open connection; undefined while not open. */
  transport: TransportName | undefined
  /**
   * The last error of the client or of this channel's subscription; it stays until a newer one
   * (a reconnect does not clear it: read `status` for the present).
   */
  error: PushError | undefined
}

type Notify = () => void
/** An error and when it happened, to pick the newer of the client's and the channel's. */
type Stamped = readonly [PushError, number]

interface Store<L> {
  /** Adds a listener; returns the function that removes it. */
  add(listener: L): () => void
}

interface ClientStore extends Store<Notify> {
  error?: Stamped
}

interface ChannelListener {
  event: string | undefined
  notify: Notify
  options: { readonly current: UsePushOptions }
}

interface ChannelStore extends Store<ChannelListener> {
  /** The last message, by event name; `undefined` keys the last of any event. */
  last: Map<string | undefined, PushMessage>
  error?: Stamped
}

let errorCount = 0
const stamp = (error: PushError): Stamped => [error, ++errorCount]

/**
 * Runs `start` for the first listener, and its stop a microtask after the last one left unless
 * another came meanwhile: StrictMode unsubscribes and resubscribes in one go.
 */
function refCounted<L>(start: (listeners: Set<L>) => () => void): Store<L> {
  const listeners = new Set<L>()
  let stop: (() => void) | undefined
  return {
    add(listener) {
      listeners.add(listener)
      stop ??= start(listeners)
      return () => {
        if (listeners.delete(listener) && !listeners.size) {
          queueMicrotask(() => {
            if (listeners.size || !stop) return
            const stopping = stop
            stop = undefined
            stopping()
          })
        }
      }
    },
  }
}

const clientStores = new WeakMap<PushClient, ClientStore>()
/** By channel name, or by definition: components that pass one definition share its validation. */
const channelStores = new WeakMap<PushClient, Map<string | ChannelDefinition, ChannelStore>>()

function clientStore(client: PushClient): ClientStore {
  let store = clientStores.get(client)
  if (!store) {
    const s: ClientStore = refCounted<Notify>((listeners) => {
      const notify = () => {
        for (const listener of listeners) listener()
      }
      const unbind = [
        client.on('state', notify),
        client.on('transport', notify),
        client.on('error', (error) => {
          s.error = stamp(error)
          notify()
        }),
      ]
      return () => unbind.forEach((off) => off())
    })
    clientStores.set(client, (store = s))
  }
  return store
}

function channelStore(client: PushClient, channel: string | ChannelDefinition): ChannelStore {
  let stores = channelStores.get(client)
  if (!stores) channelStores.set(client, (stores = new Map()))
  let store = stores.get(channel)
  if (!store) {
    const s: ChannelStore = Object.assign(
      refCounted<ChannelListener>((listeners) => {
        const fail = (error: PushError) => {
          s.error = stamp(error)
          for (const listener of listeners) listener.notify()
        }
        let subscription: Subscription | undefined
        // The component that starts the channel's subscription decides its rewind.
        const [first] = listeners
        const options = { rewind: first?.options.current.rewind }
        try {
          subscription =
            typeof channel === 'string' ? client.subscribe(channel, undefined, options) : client.subscribe(channel, undefined, options)
        } catch (error) {
          fail(error as PushError) // INVALID_CHANNEL
          return () => {
            s.error = undefined
          }
        }
        subscription.on('message', (message) => {
          s.last.set(undefined, message)
          s.last.set(message.event, message)
          for (const { event, notify, options } of listeners) {
            if (event !== undefined && event !== message.event) continue
            options.current.onMessage?.(message)
            notify()
          }
        })
        subscription.on('gap', (gap) => {
          for (const { options } of listeners) options.current.onGap?.(gap)
        })
        subscription.on('invalid', (invalid) => {
          for (const { options } of listeners) options.current.onInvalid?.(invalid)
        })
        subscription.on('error', fail)
        return () => {
          subscription.unsubscribe()
          // A later subscription starts afresh, as the client does.
          s.last.clear()
          s.error = undefined
        }
      }),
      { last: new Map() },
    )
    stores.set(channel, (store = s))
  }
  return store
}

const PushContext = createContext<PushClient | undefined>(undefined)

/** Closes scheduled by unmounting providers, cancelled by a provider of the same client mounting. */
const closing = new WeakMap<PushClient, object>()

/** Provides `client` to `usePush`; connects it on mount unless `autoConnect` is false. */
export function PushProvider({ client, autoConnect = true, children }: PushProviderProps): ReactNode {
  useEffect(() => {
    if (!autoConnect) return
    // Ours if we connect it now, or if we take over the close a previous mount scheduled.
    const owned = closing.delete(client) || client.state === 'idle' || client.state === 'closed'
    client.connect()
    return () => {
      if (!owned) return
      const token = {}
      closing.set(client, token)
      queueMicrotask(() => {
        if (closing.get(client) !== token) return
        closing.delete(client)
        client.close()
      })
    }
  }, [client, autoConnect])
  return createElement(PushContext.Provider, { value: client }, children)
}

/** What the server renders, and what hydration starts from: nothing received, not connected. */
const initial: PushState<any> = {
  data: undefined,
  message: undefined,
  status: 'idle',
  transport: undefined,
  error: undefined,
}

/**
 * The last message of `channel` and the client's status, from the nearest `<PushProvider>`.
 * Subscribes while mounted (and `enabled`); re-subscribes only when `channel`, `event` or
 * `enabled` change. On the server it returns the initial state and subscribes to nothing.
 *
 * A channel from `defineChannel` types `data` by its schema and validates each message (see
 * `onInvalid`); define it once outside components, since another definition object resubscribes.
 */
export function usePush<Schema extends StandardSchemaV1>(
  channel: ChannelDefinition<Schema>,
  options?: UsePushOptions<InferOutput<Schema>>,
): PushState<InferOutput<Schema>>
/** Without a schema, `T` is what the app asserts the data is: nothing checks it. */
export function usePush<T = unknown>(channel: string, options?: UsePushOptions<T>): PushState<T>
export function usePush<T>(channel: string | ChannelDefinition, options: UsePushOptions<T> = {}): PushState<T> {
  const client = useContext(PushContext)
  if (!client) throw new Error('usePush must be used inside a <PushProvider>')
  const { enabled = true, event } = options
  const latest = useRef(options)
  useInsertionEffect(() => {
    latest.current = options
  })

  const subscribe = useCallback(
    (notify: Notify) => {
      const offClient = clientStore(client).add(notify)
      const offChannel = enabled ? channelStore(client, channel).add({ event, notify, options: latest as { current: UsePushOptions } }) : undefined
      return () => {
        offClient()
        offChannel?.()
      }
    },
    [client, channel, event, enabled],
  )

  const getSnapshot = useMemo(() => {
    const ofClient = clientStore(client)
    const ofChannel = enabled ? channelStore(client, channel) : undefined
    let last: PushState<T> | undefined
    return (): PushState<T> => {
      const message = ofChannel?.last.get(event) as PushMessage<T> | undefined
      const [a, b] = [ofClient.error, ofChannel?.error]
      const error = (a && (!b || a[1] > b[1]) ? a : b)?.[0]
      const { state: status, transport } = client
      if (!last || last.message !== message || last.status !== status || last.transport !== transport || last.error !== error) {
        last = { data: message?.data, message, status, transport, error }
      }
      return last
    }
  }, [client, channel, event, enabled])

  return useSyncExternalStore(subscribe, getSnapshot, () => initial)
}
