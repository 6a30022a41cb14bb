// @vitest-environment jsdom
/**
 * pushline/react tested the way an app tests its components: with pushline/testing's msw handlers
 * standing in for the server, no server running. The first test is the README's "Testing your app"
 * example, as written there.
 */
import { readFileSync } from 'node:fs'
import { act, cleanup, fireEvent, render, screen } from '@testing-library/react'
import { setupServer } from 'msw/node'
import { WebSocket as NodeWebSocket } from 'ws'
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest'
import { PushClient } from '../../src/index.js'
import { PushProvider, usePush } from '../../src/react/index.js'
import { createPushMock } from '../../src/testing/index.js'

// jsdom has a global WebSocket; without it (Node 20 alone) msw needs one to intercept.
globalThis.WebSocket ??= NodeWebSocket as unknown as typeof WebSocket

// ---- the README example: from here ----
function OrderStatus({ id }: { id: string }) {
  const { data, status } = usePush<{ state: string }>(`orders/${id}`)
  return <p role="status">{status === 'open' ? (data?.state ?? 'waiting') : status}</p>
}

const push = createPushMock({ url: 'http://localhost/push' })
const server = setupServer(...push.handlers)
beforeAll(() => server.listen())
afterEach(() => cleanup())
afterAll(() => server.close())

it('shows the order state the server pushes, and the reconnect', async () => {
  // In Node, pushline uses the `ws` package; msw intercepts the global WebSocket.
  const client = new PushClient({ url: 'http://localhost/push', WebSocket: globalThis.WebSocket })
  render(
    <PushProvider client={client}>
      <OrderStatus id="42" />
    </PushProvider>,
  )
  await push.subscribed('orders/42')
  expect(screen.getByRole('status').textContent).toBe('waiting')

  act(() => void push.publish('orders/42', { state: 'shipped' }))
  expect((await screen.findByText('shipped')).textContent).toBe('shipped')

  push.disconnect() // a network cut: the client reconnects and resumes
  push.publish('orders/42', { state: 'delivered' }) // while the client is away
  expect(await screen.findByText('reconnecting')).toBeTruthy()
  expect(await screen.findByText('delivered')).toBeTruthy() // nothing lost
  client.close()
})
// ---- to here ----

it('records what a component publishes', async () => {
  const client = new PushClient({ url: 'http://localhost/push', WebSocket: globalThis.WebSocket })
  function Like({ post }: { post: string }) {
    const { data } = usePush<{ likes: number }>(`likes/${post}`)
    return (
      <button type="button" onClick={() => void client.publish(`likes/${post}`, { likes: (data?.likes ?? 0) + 1 })}>
        {`${data?.likes ?? 0} likes`}
      </button>
    )
  }
  render(
    <PushProvider client={client}>
      <Like post="p1" />
    </PushProvider>,
  )
  await push.subscribed('likes/p1')
  fireEvent.click(screen.getByRole('button'))
  // The mock stores the publish and delivers it to the subscriber: the component's own one.
  expect(await screen.findByText('1 likes')).toBeTruthy()
  fireEvent.click(screen.getByRole('button'))
  expect(await screen.findByText('2 likes')).toBeTruthy()
  expect(push.published.map(({ channel, data, ack }) => [channel, data, ack.id])).toEqual([
    ['likes/p1', { likes: 1 }, 'mock1-1'],
    ['likes/p1', { likes: 2 }, 'mock1-2'],
  ])
  client.close()
})

it('renders a fallback transport when the WebSocket is refused', async () => {
  push.refuse('websocket')
  const client = new PushClient({ url: 'http://localhost/push', WebSocket: globalThis.WebSocket, lifecycle: null })
  function Transport() {
    const { transport, data } = usePush<string>('news')
    return <p role="status">{`${transport ?? '-'}|${data ?? '-'}`}</p>
  }
  render(
    <PushProvider client={client}>
      <Transport />
    </PushProvider>,
  )
  await push.subscribed('news')
  act(() => void push.publish('news', 'hello'))
  expect(await screen.findByText('sse|hello')).toBeTruthy()
  push.refuse()
  client.close()
})

it('is the example the README shows', () => {
  // The repository root is vitest's working directory (import.meta.url is not a file URL under jsdom).
  const source = readFileSync('test/react/push-mock.test.tsx', 'utf8')
  const example = /\/\/ ---- the README example: from here ----\n([^]*?)\/\/ ---- to here ----/.exec(source)?.[1]
  expect(example).toBeDefined()
  expect(readFileSync('README.md', 'utf8')).toContain(example)
})
