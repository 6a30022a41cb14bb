// The React e2e page: a tiny app on `pushline/react`, bundled by e2e/react.test.ts from this file
// with the built package (`pushline` and `pushline/react` resolve to dist/ through package.json's
// exports, as in an app). It renders inside <StrictMode> with React's development build, where
// StrictMode mounts, unmounts and remounts every effect once: the case that must not open a second
// connection or subscription. What the tests read is kept in `window.reactE2E`.
// Query: ?transport=<name> (default websocket).
import { StrictMode, useEffect, useState } from 'react'
import { createRoot } from 'react-dom/client'
import { PushClient, type PushMessage, type RegisteredTransportName } from 'pushline'
import { PushProvider, usePush } from 'pushline/react'

interface Order {
  n: number
  status: string
}

export interface ReactE2E {
  /** Every `state` event of the client. */
  states: string[]
  /** `data.n` of every message `onMessage` saw, in arrival order. */
  received: number[]
  /** Effect runs of <Orders>: StrictMode in development makes it 2 mounts and 1 unmount. */
  mounts: number
  unmounts: number
}

declare global {
  interface Window {
    reactE2E: ReactE2E
  }
}

const transport = (new URLSearchParams(location.search).get('transport') ?? 'websocket') as RegisteredTransportName
const client = new PushClient({ url: new URL('/push', location.href).href, transports: [transport] })
const log: ReactE2E = { states: [], received: [], mounts: 0, unmounts: 0 }
window.reactE2E = log
client.on('state', (state) => log.states.push(state))

function Orders() {
  const [recent, setRecent] = useState<number[]>([])
  const { data, message, status, transport: inUse } = usePush<Order>('orders', {
    onMessage: (msg: PushMessage<Order>) => {
      log.received.push(msg.data.n)
      setRecent((shown) => [...shown, msg.data.n])
    },
  })
  useEffect(() => {
    log.mounts++
    return () => {
      log.unmounts++
    }
  }, [])
  return (
    <section id="orders">
      <dl>
        <dt>status</dt>
        <dd id="status">{status}</dd>
        <dt>transport</dt>
        <dd id="transport">{inUse ?? '-'}</dd>
        <dt>latest order</dt>
        <dd id="data">{data ? `#${data.n} ${data.status}` : 'none yet'}</dd>
        <dt>message id</dt>
        <dd id="message-id">{message?.id ?? '-'}</dd>
      </dl>
      <ol id="recent">
        {recent.map((n) => (
          <li key={n}>#{n}</li>
        ))}
      </ol>
    </section>
  )
}

function App() {
  const [shown, setShown] = useState(true)
  return (
    <PushProvider client={client}>
      <h1>pushline/react in Chromium ({transport})</h1>
      <button id="toggle" type="button" onClick={() => setShown((was) => !was)}>
        {shown ? 'Unmount <Orders>' : 'Mount <Orders>'}
      </button>
      {shown ? <Orders /> : <p id="unmounted">&lt;Orders&gt; is unmounted.</p>}
    </PushProvider>
  )
}

createRoot(document.getElementById('root') as HTMLElement).render(
  <StrictMode>
    <App />
  </StrictMode>,
)
