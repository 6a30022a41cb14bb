// The pushline/testing e2e page: msw's browser worker with pushline/testing's handlers, and the
// real PushClient of the built package, bundled by e2e/testing.test.ts (`pushline` and
// `pushline/testing` resolve to dist/ through package.json's exports, as in an app). Each run
// makes its own mock, so the page's pushline client talks only to msw: the mock's base URL is a
// path no server answers. What the test reads is returned by `window.testingE2E`'s functions.
import { setupWorker } from 'msw/browser'
import { PushClient, longPolling, shortPolling, sse, websocket, type FallbackEvent, type GapInfo, type TransportFactory } from 'pushline'
import { createPushMock, type MockTransportName, type PushMock, type RecordedSubscription } from 'pushline/testing'

/** Only msw answers here: the e2e server has nothing at this path. */
const BASE = '/mocked-push'

const FACTORIES: Record<MockTransportName, () => TransportFactory> = {
  websocket: () => websocket(),
  sse: () => sse(),
  'long-polling': () => longPolling(),
  'short-polling': () => shortPolling({ intervalMs: 50 }),
}

export interface RunResult {
  transport: string | undefined
  /** Message ids the subscription received, in order. */
  ids: string[]
  data: unknown[]
  gaps: GapInfo[]
  fallbacks: FallbackEvent[]
  ackId: string
  published: Array<{ channel: string; data: unknown; via: string; ackId: string }>
  subscriptions: RecordedSubscription[]
}

export interface TestingE2E {
  /** Resolves once the worker controls the page. */
  ready: Promise<unknown>
  /** Pushes, publishes, disconnects and loses messages over one transport; or, with `refused`, over the fallback every transport leads to. */
  run(transport: MockTransportName | 'auto', refused?: MockTransportName[]): Promise<RunResult>
}

declare global {
  interface Window {
    testingE2E: TestingE2E
  }
}

const worker = setupWorker()

/** Polls `check` until it holds; fails after 10 s with `what`. */
async function until(what: string, check: () => boolean): Promise<void> {
  for (const started = Date.now(); !check(); ) {
    if (Date.now() - started > 10_000) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

async function run(transport: MockTransportName | 'auto', refused: MockTransportName[] = []): Promise<RunResult> {
  const push: PushMock = createPushMock({ url: BASE })
  worker.resetHandlers(...push.handlers)
  push.refuse(...refused)
  const memory = new Map<string, string>()
  const client = new PushClient({
    url: BASE,
    transports: transport === 'auto' ? Object.values(FACTORIES).map((factory) => factory()) : [FACTORIES[transport]()],
    lifecycle: null,
    reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
    storage: { getItem: (key) => memory.get(key) ?? null, setItem: (key, value) => void memory.set(key, value) },
  })
  const ids: string[] = []
  const data: unknown[] = []
  const gaps: GapInfo[] = []
  const fallbacks: FallbackEvent[] = []
  client.on('fallback', (event) => fallbacks.push(event))
  const subscription = client.subscribe('news', (message) => {
    ids.push(message.id)
    data.push(message.data)
  })
  subscription.on('gap', (gap) => gaps.push(gap))
  client.connect()
  try {
    await push.subscribed('news')
    push.publish('news', 'one')
    push.publish('news', 'two')
    await until('the pushed messages', () => ids.length === 2)
    const ack = await client.publish('news', 'from the page')
    await until('the page\'s own publish', () => ids.length === 3)
    // A cut, a message while the client is away, and the resume.
    push.disconnect()
    push.publish('news', 'while away')
    await until('the resume', () => ids.length === 4)
    // Two messages lost, then one more.
    push.gap('news', 2)
    push.publish('news', 'after the gap')
    await until('the message after the gap', () => ids.length === 5)
    return {
      transport: client.transport,
      ids,
      data,
      gaps,
      fallbacks,
      ackId: ack.id,
      published: push.published.map(({ channel, data, via, ack }) => ({ channel, data, via, ackId: ack.id })),
      subscriptions: [...push.subscriptions],
    }
  } finally {
    client.close()
  }
}

window.testingE2E = {
  ready: worker.start({ serviceWorker: { url: '/mockServiceWorker.js' }, quiet: true, onUnhandledRequest: 'bypass' }),
  run,
}
