// The back-forward cache page's app (e2e/bfcache.test.ts): a PushClient from the script-tag bundle
// on one transport, subscribed to `bfcache`, recording what it receives in `window.received` and
// the page's lifecycle in `window.bfcache`, so that the test can tell a restore from a reload.
// Query: ?transport=websocket|sse (default websocket); lifecycle=off builds the client with
// `lifecycle: null` (it then ignores pagehide/pageshow), for the test's control case; share=1
// shares one connection among the tabs (`share: true`).
/* global Pushline */
'use strict'

const query = new URLSearchParams(location.search)
const transport = query.get('transport') || 'websocket'
const $ = (id) => document.getElementById(id)

// Per tab: how many times this page's scripts ran. A restore from the cache runs nothing again;
// a reload (the page was not cached) makes it 2.
const runs = Number(sessionStorage.getItem('bfcache-runs') || '0') + 1
sessionStorage.setItem('bfcache-runs', String(runs))

const bfcache = {
  /** Unique to this document's JS heap: the same value after going back means the heap survived. */
  documentId: crypto.randomUUID(),
  runs,
  /** `pageshow`/`pagehide` in order, with `event.persisted`. */
  pageEvents: [],
  states: [],
  transports: [],
  errors: [],
  /** Channel `bfcache-back`, where this page publishes from its pagehide listener. */
  echoes: [],
  gaps: [],
  subscribed: [],
  /** Outcome of the publish made in pagehide: `{ ok, offset }` or `{ ok: false, code }`, once settled. */
  hidePublish: undefined,
}
window.bfcache = bfcache
/** Messages of channel `bfcache`: { n, offset, id }. */
window.received = []
$('transport').textContent = transport

const options = { url: new URL('/push', location.href).href, transports: [transport] }
const lifecycle = query.get('lifecycle') !== 'off'
if (!lifecycle) options.lifecycle = null
if (query.get('share') === '1') options.share = true
const client = new Pushline.PushClient(options)

client.on('state', (state) => {
  bfcache.states.push(state)
  $('state').textContent = state
})
client.on('transport', (name) => bfcache.transports.push(name))
client.on('error', (error) => bfcache.errors.push(`${error.code}: ${error.message}`))

const watch = (subscription) => {
  subscription.on('gap', (gap) => bfcache.gaps.push({ ...gap }))
  subscription.on('subscribed', () => bfcache.subscribed.push(subscription.channel))
  return subscription
}
watch(
  client.subscribe('bfcache', (message) => {
    window.received.push({ n: message.data.n, offset: message.offset, id: message.id })
    const item = document.createElement('li')
    item.textContent = `${message.id} n=${message.data.n}`
    $('log').append(item)
  }),
)
watch(client.subscribe('bfcache-back', (message) => bfcache.echoes.push({ data: message.data, offset: message.offset })))

const recordPageEvent = (event) => {
  bfcache.pageEvents.push({ type: event.type, persisted: event.persisted })
  $('page-events').textContent = bfcache.pageEvents.map((e) => `${e.type}${e.persisted ? ' (persisted)' : ''}`).join(', ')
}
addEventListener('pageshow', recordPageEvent)
client.connect()
// Added after connect(), so after the client's own listener: by the time this publish is made the
// client has closed its connection for the cache, so the publish must wait in its outbox until
// pageshow, and then go out once.
addEventListener('pagehide', (event) => {
  recordPageEvent(event)
  // Not in the control: an uncached connection would send it at once, an SSE client as a fetch
  // still in flight, which is no part of what the control shows.
  if (!lifecycle || !event.persisted || bfcache.hidePublish !== undefined) return
  bfcache.hidePublish = null // made, not settled
  client.publish('bfcache-back', { from: 'pagehide' }).then(
    (ack) => {
      bfcache.hidePublish = { ok: true, offset: ack.offset }
      $('published').textContent = `ack ${ack.id}`
    },
    (error) => {
      bfcache.hidePublish = { ok: false, code: error.code }
      $('published').textContent = error.code
    },
  )
})
