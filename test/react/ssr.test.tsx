// @vitest-environment node
/**
 * Server rendering in plain Node (no DOM globals): usePush renders the initial state and neither
 * connects nor subscribes.
 */
import { StrictMode } from 'react'
import { renderToString } from 'react-dom/server'
import { expect, it, vi } from 'vitest'
import { PushClient } from '../../src/index.js'
import type { WebSocketConstructor } from '../../src/index.js'
import { PushProvider, usePush } from '../../src/react/index.js'

function News() {
  const { data, message, status, transport, error } = usePush<{ n: number }>('news', { onMessage: () => {} })
  return <p>{`${status}|${transport ?? '-'}|${data?.n ?? '-'}|${message?.id ?? '-'}|${error?.code ?? '-'}`}</p>
}

it('renders the initial state without touching a browser API', () => {
  expect(typeof window).toBe('undefined')
  expect(typeof document).toBe('undefined')
  const constructed = vi.fn()
  const WebSocket = function () {
    constructed()
    throw new Error('no WebSocket on the server')
  } as unknown as WebSocketConstructor
  const client = new PushClient({ url: 'http://127.0.0.1:1/push', WebSocket })
  const subscribe = vi.spyOn(client, 'subscribe')
  const connect = vi.spyOn(client, 'connect')
  const on = vi.spyOn(client, 'on')

  const html = renderToString(
    <StrictMode>
      <PushProvider client={client}>
        <News />
      </PushProvider>
    </StrictMode>,
  )

  expect(html).toBe('<p>idle|-|-|-|-</p>')
  expect(constructed).not.toHaveBeenCalled()
  expect(subscribe).not.toHaveBeenCalled()
  expect(connect).not.toHaveBeenCalled()
  expect(on).not.toHaveBeenCalled()
  expect(client.state).toBe('idle')
})
