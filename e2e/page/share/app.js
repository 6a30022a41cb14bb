// A page with `share: tabShare()` on SSE, bundled by e2e/share.test.ts from dist/. It keeps what it
// sees in `window.e2e`: the messages of channel `e2e`, gaps, and transports.
import { PushClient, sse } from '../../../dist/index.js'
import { tabShare } from '../../../dist/share.js'

const e2e = { messages: [], gaps: [], transports: [], states: [] }
window.e2e = e2e
const client = new PushClient({ url: new URL('/push', location.href).href, transports: [sse()], share: tabShare() })
client.on('transport', (name) => e2e.transports.push(name))
client.on('state', (state) => e2e.states.push(state))
const subscription = client.subscribe('e2e', (message) => e2e.messages.push(message.data.n))
subscription.on('gap', (gap) => e2e.gaps.push(gap))
client.connect()
