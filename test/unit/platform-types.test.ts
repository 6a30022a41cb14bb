// Type-level checks, enforced by `tsc`: the platform pieces people actually have fit the injection
// options without casts.
import { EventSource as NodeEventSource } from 'eventsource'
import NodeWebSocket from 'ws'
import { expect, it } from 'vitest'
import type { PushClientOptions } from '../../src/index.js'

it('accepts the DOM, ws and eventsource classes, fetch and the global timers', () => {
  const options: PushClientOptions[] = [
    { url: 'http://x', WebSocket: NodeWebSocket },
    { url: 'http://x', WebSocket: globalThis.WebSocket },
    { url: 'http://x', EventSource: NodeEventSource },
    { url: 'http://x', EventSource: globalThis.EventSource },
    { url: 'http://x', fetch: globalThis.fetch, timers: { setTimeout, clearTimeout, now: Date.now } },
  ]
  expect(options).toHaveLength(5)
})
