// The e2e page's app: uses the global `Pushline` from the script-tag bundle the way a site would,
// and keeps what it sees in `window.e2e` (read by the tests) and on screen (for screenshots).
// Query: ?transport=<name> (default websocket; `auto`: the default list, negotiated); optional graceMs (heartbeatGraceMs), maxDelayMs
// (reconnect backoff cap), retryMs (a fixed reconnect delay instead of the backoff) and pollMs (the
// short-polling interval), for tests about outages.
/* global Pushline */
'use strict'

const query = new URLSearchParams(location.search)
const transport = query.get('transport') || 'websocket'
const numberParam = (name) => (query.has(name) ? Number(query.get(name)) : undefined)
const $ = (id) => document.getElementById(id)

const e2e = {
  states: [],
  transports: [],
  errors: [],
  /** Messages of channel `e2e`: { event, data, offset, id }. */
  messages: [],
  /** Messages of channel `e2e-back`, where this page publishes. */
  echoes: [],
  /** Gaps reported on either channel: { channel, reason, from, to }. */
  gaps: [],
  /** Channels whose subscription the server confirmed (`subscribed` events), in order. */
  subscribed: [],
  /** Milliseconds from the page's start to the first message of `e2e`, and the transport then. */
  firstMessage: undefined,
  /** `fallback` events: { from, to, reason }. */
  fallbacks: [],
}
window.e2e = e2e
$('requested').textContent = transport

const [graceMs, maxDelayMs, retryMs, pollMs] = ['graceMs', 'maxDelayMs', 'retryMs', 'pollMs'].map(numberParam)
const options = { url: new URL('/push', location.href).href }
// By name, as a site would; a factory only to set the short-polling interval.
if (transport !== 'auto') {
  options.transports = [transport === 'short-polling' && pollMs !== undefined ? Pushline.shortPolling({ intervalMs: pollMs }) : transport]
}
if (graceMs !== undefined) options.heartbeatGraceMs = graceMs
if (maxDelayMs !== undefined) options.reconnect = { maxDelayMs }
if (retryMs !== undefined) options.reconnect = { retryDelayMs: () => retryMs }
const client = new Pushline.PushClient(options)
window.e2eClient = client

client.on('state', (state) => {
  e2e.states.push(state)
  $('state').textContent = state
})
client.on('fallback', (event) => e2e.fallbacks.push({ ...event }))
client.on('transport', (name) => {
  e2e.transports.push(name)
  $('transport').textContent = name
})
client.on('error', (error) => {
  e2e.errors.push(`${error.code}: ${error.message}`)
  $('errors').textContent = e2e.errors.join('; ')
  $('errors').className = 'error'
})

const keep = (message) => ({ event: message.event, data: message.data, offset: message.offset, id: message.id })
const watch = (subscription) => {
  subscription.on('gap', (gap) => e2e.gaps.push({ ...gap }))
  subscription.on('subscribed', () => e2e.subscribed.push(subscription.channel))
}
watch(
  client.subscribe('e2e', (message) => {
    e2e.firstMessage ??= { ms: Math.round(performance.now()), transport: client.transport }
    e2e.messages.push(keep(message))
    const item = document.createElement('li')
    item.textContent = `${message.id} ${JSON.stringify(message.data)}`
    $('log').append(item)
  }),
)
watch(
  client.subscribe('e2e-back', (message) => {
    e2e.echoes.push(keep(message))
  }),
)
client.connect()

/** Publishes `data` on `e2e-back`; resolves with the ack, or with the error's code. */
window.e2ePublish = async (data) => {
  try {
    const ack = await client.publish('e2e-back', data)
    $('published').textContent = `${JSON.stringify(data)} → ack ${ack.id}`
    return { ok: true, channel: ack.channel, offset: ack.offset, id: ack.id }
  } catch (error) {
    return { ok: false, code: error.code, message: error.message }
  }
}
