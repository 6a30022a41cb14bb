// @vitest-environment jsdom
/**
 * pushline/react in jsdom against a real pushline server. jsdom has a WebSocket of its own; the
 * client is given `ws` explicitly (platform injection), counted so tests can assert connections.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { act, cleanup, render, screen, waitFor } from '@testing-library/react'
import { StrictMode, useState } from 'react'
import NodeWebSocket from 'ws'
import { afterEach, beforeEach, describe, expect, it, vi, type MockInstance } from 'vitest'
import { z } from 'zod'
import { PushClient, defineChannel, websocket } from '../../src/index.js'
import type { InvalidMessage, PushMessage } from '../../src/index.js'
import { PushProvider, usePush, type UsePushOptions } from '../../src/react/index.js'
import { createPushServer } from '../../src/server/index.js'

type PushServer = ReturnType<typeof createPushServer>

let server: http.Server
let push: PushServer
let url: string
let client: PushClient
/** WebSockets the client constructed. */
let sockets: number
let subscribe: MockInstance<PushClient['subscribe']>

beforeEach(async () => {
  server = http.createServer()
  push = createPushServer()
  push.attach(server, { path: '/push' })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/push`
  sockets = 0
  class CountingWebSocket extends NodeWebSocket {
    constructor(address: string, protocols?: string | string[]) {
      super(address, protocols)
      sockets++
    }
  }
  client = new PushClient({ url, transports: [websocket()], WebSocket: CountingWebSocket })
  subscribe = vi.spyOn(client, 'subscribe')
})

afterEach(async () => {
  cleanup()
  vi.restoreAllMocks()
  client.close()
  await push.close()
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
})

function News(props: UsePushOptions<{ n: number }> & { channel?: string }) {
  const { channel = 'news', ...options } = props
  const { data, message, status, transport, error } = usePush<{ n: number }>(channel, options)
  return (
    <p data-testid="out">
      {`${status}|${transport ?? '-'}|${data?.n ?? '-'}|${message?.event ?? '-'}|${error?.code ?? '-'}`}
    </p>
  )
}

const out = () => screen.getByTestId('out').textContent
const stats = () => push.stats()

/** Waits until the server counts the subscription, so a publish reaches the client. */
async function subscribed(count = 1) {
  await waitFor(() => expect(stats().subscriptions).toBe(count))
}

describe('usePush', () => {
  it('re-renders with each message, and reports status and transport', async () => {
    render(
      <PushProvider client={client}>
        <News />
      </PushProvider>,
    )
    expect(out()).toMatch(/^connecting\|-\|-\|-\|-$/)
    await waitFor(() => expect(out()).toBe('open|websocket|-|-|-'))
    await subscribed()
    await act(() => push.publish('news', { n: 1 }))
    await waitFor(() => expect(out()).toBe('open|websocket|1|message|-'))
    await act(() => push.publish('news', { n: 2 }, { event: 'update' }))
    await waitFor(() => expect(out()).toBe('open|websocket|2|update|-'))
    expect(client.state).toBe('open')
    expect(client.transport).toBe('websocket')
  })

  it('starts with the newest messages when asked to rewind, each once, under StrictMode', async () => {
    for (const n of [1, 2, 3]) await push.publish('news', { n })
    const seen: number[] = []
    render(
      <StrictMode>
        <PushProvider client={client}>
          <News rewind={2} onMessage={(message) => seen.push(message.data.n)} />
        </PushProvider>
      </StrictMode>,
    )
    await waitFor(() => expect(out()).toBe('open|websocket|3|message|-'))
    expect(seen).toEqual([2, 3])
    expect(subscribe).toHaveBeenCalledTimes(1)
    await act(() => push.publish('news', { n: 4 }))
    await waitFor(() => expect(out()).toBe('open|websocket|4|message|-'))
    expect(seen).toEqual([2, 3, 4])
  })

  it('opens one connection and one subscription under StrictMode', async () => {
    const states: string[] = []
    client.on('state', (state) => states.push(state))
    render(
      <StrictMode>
        <PushProvider client={client}>
          <News />
        </PushProvider>
      </StrictMode>,
    )
    await waitFor(() => expect(out()).toBe('open|websocket|-|-|-'))
    await subscribed()
    // Give a stray second connection or resubscribe time to show.
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(stats()).toMatchObject({ connections: 1, subscriptions: 1 })
    expect(sockets).toBe(1)
    expect(subscribe).toHaveBeenCalledTimes(1)
    // The double effect did not close the client on the way.
    expect(states).toEqual(['connecting', 'open'])
  })

  it('shares one client subscription between components of one channel', async () => {
    render(
      <PushProvider client={client}>
        <News />
        <News event="update" />
      </PushProvider>,
    )
    await subscribed()
    expect(subscribe).toHaveBeenCalledTimes(1)
    await act(() => push.publish('news', { n: 1 }, { event: 'update' }))
    await waitFor(() => expect(screen.getAllByTestId('out').map((p) => p.textContent)).toEqual(['open|websocket|1|update|-', 'open|websocket|1|update|-']))
  })

  it('keeps the subscription across re-renders with inline options, calling the latest callbacks', async () => {
    const seen: string[] = []
    function Inline() {
      const [round, setRound] = useState(0)
      const { data } = usePush<{ n: number }>('news', {
        event: 'tick',
        onMessage: (message: PushMessage<{ n: number }>) => seen.push(`${round}:${message.data.n}`),
        onGap: () => {},
      })
      return (
        <button type="button" onClick={() => setRound((r) => r + 1)}>
          {`${round}|${data?.n ?? '-'}`}
        </button>
      )
    }
    render(
      <StrictMode>
        <PushProvider client={client}>
          <Inline />
        </PushProvider>
      </StrictMode>,
    )
    await subscribed()
    const button = screen.getByRole('button')
    for (let i = 0; i < 5; i++) act(() => button.click())
    expect(button.textContent).toBe('5|-')
    await act(() => push.publish('news', { n: 1 }, { event: 'other' }))
    await act(() => push.publish('news', { n: 2 }, { event: 'tick' }))
    await waitFor(() => expect(button.textContent).toBe('5|2'))
    // Only the matching event, through the callback of the last render.
    expect(seen).toEqual(['5:2'])
    expect(subscribe).toHaveBeenCalledTimes(1)
    expect(stats().subscriptions).toBe(1)
  })

  it('resubscribes when the channel changes', async () => {
    const { rerender } = render(
      <PushProvider client={client}>
        <News channel="a" />
      </PushProvider>,
    )
    await subscribed()
    rerender(
      <PushProvider client={client}>
        <News channel="b" />
      </PushProvider>,
    )
    await waitFor(() => expect(stats()).toMatchObject({ subscriptions: 1, channels: 1 }))
    await act(() => push.publish('a', { n: 1 }))
    await act(() => push.publish('b', { n: 2 }))
    await waitFor(() => expect(out()).toBe('open|websocket|2|message|-'))
    expect(subscribe.mock.calls.map(([channel]) => channel)).toEqual(['a', 'b'])
  })

  it('unsubscribes on unmount, and the provider closes the client it opened', async () => {
    const { unmount } = render(
      <PushProvider client={client}>
        <News />
      </PushProvider>,
    )
    await subscribed()
    unmount()
    await waitFor(() => expect(stats()).toMatchObject({ subscriptions: 0, connections: 0 }))
    expect(client.state).toBe('closed')
  })

  it('unsubscribes when the last component of a channel unmounts, keeping the connection', async () => {
    function Toggle() {
      const [shown, setShown] = useState(true)
      return (
        <>
          <button type="button" onClick={() => setShown((s) => !s)} />
          {shown && <News />}
        </>
      )
    }
    render(
      <StrictMode>
        <PushProvider client={client}>
          <Toggle />
        </PushProvider>
      </StrictMode>,
    )
    await subscribed()
    act(() => screen.getByRole('button').click())
    await waitFor(() => expect(stats()).toMatchObject({ subscriptions: 0, connections: 1 }))
    act(() => screen.getByRole('button').click())
    await subscribed()
    // A fresh subscription starts without the old data.
    expect(out()).toBe('open|websocket|-|-|-')
    expect(subscribe).toHaveBeenCalledTimes(2)
  })

  it('does not subscribe while enabled is false, and still reports status', async () => {
    const { rerender } = render(
      <PushProvider client={client}>
        <News enabled={false} />
      </PushProvider>,
    )
    await waitFor(() => expect(out()).toBe('open|websocket|-|-|-'))
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(stats()).toMatchObject({ connections: 1, subscriptions: 0 })
    expect(subscribe).not.toHaveBeenCalled()
    rerender(
      <PushProvider client={client}>
        <News enabled />
      </PushProvider>,
    )
    await subscribed()
    expect(subscribe).toHaveBeenCalledTimes(1)
  })

  it('reports a refused channel name as the error', async () => {
    render(
      <PushProvider client={client}>
        <News channel="bad channel!" />
      </PushProvider>,
    )
    await waitFor(() => expect(out()).toMatch(/\|INVALID_CHANNEL$/))
  })

  it('leaves connecting to the app with autoConnect={false}', async () => {
    render(
      <StrictMode>
        <PushProvider client={client} autoConnect={false}>
          <News />
        </PushProvider>
      </StrictMode>,
    )
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(out()).toBe('idle|-|-|-|-')
    expect(sockets).toBe(0)
    act(() => client.connect())
    await waitFor(() => expect(out()).toBe('open|websocket|-|-|-'))
    await subscribed()
    cleanup()
    await waitFor(() => expect(stats().subscriptions).toBe(0))
    expect(client.state).toBe('open')
  })

  it('does not close a client that was already connected when the provider mounted', async () => {
    client.connect()
    await waitFor(() => expect(client.state).toBe('open'))
    const { unmount } = render(
      <PushProvider client={client}>
        <News />
      </PushProvider>,
    )
    await subscribed()
    unmount()
    await waitFor(() => expect(stats().subscriptions).toBe(0))
    expect(client.state).toBe('open')
  })

  it('throws outside a provider', () => {
    vi.spyOn(console, 'error').mockImplementation(() => {})
    expect(() => render(<News />)).toThrow(/PushProvider/)
  })
})

describe('usePush with a channel from defineChannel', () => {
  const counts = defineChannel('counts', z.object({ n: z.number().int() }))

  function Count({ onInvalid }: { onInvalid: (invalid: InvalidMessage) => void }) {
    const { data } = usePush(counts, { onInvalid })
    return <p data-testid="out">{data === undefined ? '-' : String(data.n)}</p>
  }

  it('shows only data that passed the schema, and reports the rest to onInvalid', async () => {
    const invalid: InvalidMessage[] = []
    render(
      <PushProvider client={client}>
        <Count onInvalid={(event) => invalid.push(event)} />
      </PushProvider>,
    )
    await subscribed()
    await act(() => push.publish('counts', { n: 1 }))
    await waitFor(() => expect(out()).toBe('1'))
    await act(() => push.publish('counts', { n: 'two' }))
    await act(() => push.publish('counts', { n: 3 }))
    await waitFor(() => expect(out()).toBe('3'))
    expect(invalid.map(({ message }) => message.data)).toEqual([{ n: 'two' }])
    expect(subscribe).toHaveBeenCalledWith(counts, undefined, { rewind: undefined })
  })
})
