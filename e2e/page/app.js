// The e2e page's app: uses the global `Pushline` from the script-tag bundle the way a site would,
// and keeps what it sees in `window.e2e` (read by the tests) and on screen (for screenshots).
// Query: ?transport=websocket|sse
/* global Pushline */
'use strict'

const transport = new URLSearchParams(location.search).get('transport') || 'websocket'
const $ = (id) => document.getElementById(id)

const e2e = {
  states: [],
  transports: [],
  errors: [],
  /** Messages of channel `e2e`: { event, data, offset, id }. */
  messages: [],
  /** Messages of channel `e2e-back`, where this page publishes. */
  echoes: [],
}
window.e2e = e2e
$('requested').textContent = transport

const client = new Pushline.PushClient({ url: new URL('/push', location.href).href, transports: [transport] })
window.e2eClient = client

client.on('state', (state) => {
  e2e.states.push(state)
  $('state').textContent = state
})
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
client.subscribe('e2e', (message) => {
  e2e.messages.push(keep(message))
  const item = document.createElement('li')
  item.textContent = `${message.id} ${JSON.stringify(message.data)}`
  $('log').append(item)
})
client.subscribe('e2e-back', (message) => {
  e2e.echoes.push(keep(message))
})
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
