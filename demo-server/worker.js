// A Node worker that consumes a channel with `for await`, as a back-office job would (send the
// e-mail, update the search index): one message at a time, in order, and on through server
// restarts and network trouble, because the client reconnects and resumes by itself.
//
//   npm run demo                                               (in one terminal)
//   PUSH_URL=http://127.0.0.1:8080/push node demo-server/worker.js orders
//
// Each message becomes one JSON line on stdout; what the connection does goes to stderr. When the
// server restarts with its history gone (the in-memory broker), the subscription reports an
// `epoch-changed` gap and goes on with the new server's messages. SIGINT/SIGTERM unsubscribe,
// which ends the loop, and the worker closes its client and exits.

import { PushClient } from 'pushline'

const url = process.env.PUSH_URL ?? 'http://127.0.0.1:8080/push'
const channel = process.argv[2] ?? 'orders'

// Node has no iframes; every other transport works here (the `ws` and `eventsource` packages).
const client = new PushClient({ url, transports: ['websocket', 'sse', 'long-polling'] })
client.on('state', (state) => console.error(`worker: ${state}`))
client.on('error', (error) => console.error(`worker: ${error.code}: ${error.message}`))

const messages = client.subscribe(channel)
messages.on('gap', ({ reason, from, to }) => console.error(`worker: gap on ${channel}: ${reason} (from ${from ?? 'start'} to ${to})`))

client.connect()

// Unsubscribing ends the loop below (client.close() alone leaves a pending iteration waiting).
const stop = () => messages.unsubscribe()
process.on('SIGINT', stop)
process.on('SIGTERM', stop)

for await (const message of messages) {
  // The work. A slow step here holds the next message back: order is kept, nothing is skipped.
  console.log(JSON.stringify({ id: message.id, event: message.event, data: message.data }))
}
console.error('worker: done')
client.close()
