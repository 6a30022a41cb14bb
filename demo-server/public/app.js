// The demo page: one PushClient from the script-tag bundle (global `Pushline`), three channels, and a
// picker that restarts the client on other transports. Everything shown comes from the client's own
// events; the page never invents a state or a transport.
'use strict'

const $ = (id) => document.getElementById(id)
const PUSH_URL = new URL('/push', location.href).href
const CHANNELS = ['orders', 'notifications', 'chat']
const MAX_LINES = 200

let client = null
let subscriptions = []

function start(transports) {
  client = new Pushline.PushClient({ url: PUSH_URL, transports })
  client.on('state', (state) => {
    $('state').textContent = state
    $('state').dataset.state = state
    logEvent(`state → ${state}`)
    if (state === 'open') loadSnapshot()
  })
  client.on('transport', (transport) => {
    $('transport').textContent = transport ?? 'none'
    logEvent(`transport → ${transport ?? 'none'}`)
  })
  client.on('error', (error) => logEvent(`error ${error.code}: ${error.message}`, 'error'))
  client.on('fallback', ({ from, to, reason }) => logEvent(`fallback ${from} → ${to}: ${reason}`))

  subscriptions = CHANNELS.map((channel) => {
    const subscription = client.subscribe(channel, (msg) => onMessage(msg))
    subscription.on('gap', (gap) => {
      logEvent(`gap on ${gap.channel}: ${gap.reason} (from ${gap.from ?? 'start'} to ${gap.to})`, 'gap')
    })
    return subscription
  })
  smartHome.attach(client)
  client.connect()
}

function stop() {
  for (const subscription of subscriptions) subscription.unsubscribe()
  subscriptions = []
  smartHome.detach()
  client?.close()
  client = null
  $('transport').textContent = 'none'
}

$('picker').addEventListener('change', (event) => {
  const transports = event.target.value ? event.target.value.split(',') : undefined
  logEvent(`picker: restarting the client with transports [${transports ? transports.join(', ') : 'all, negotiated'}]`)
  stop()
  start(transports)
})

// ---- snapshot ----------------------------------------------------------------------------------

/**
 * Subscriptions deliver what happens from now on; the current badge and order table come from
 * /demo/snapshot, loaded on every (re)connect. Each part carries the id of the message that produced
 * it, so whichever is newer wins: a snapshot never overwrites a live message it predates.
 */
async function loadSnapshot() {
  try {
    const response = await fetch('/demo/snapshot', { cache: 'no-store' })
    const snapshot = await response.json()
    for (const order of snapshot.orders) showOrder(order, order.id, { quiet: true })
    if (snapshot.notifications) showUnread(snapshot.notifications, snapshot.notifications.id)
  } catch (error) {
    logEvent(`snapshot failed: ${error.message}`, 'error')
  }
}

/** True when message id `a` is newer than `b` (`<epoch>-<offset>`); another epoch counts as newer. */
function isNewer(a, b) {
  if (!b) return true
  const cut = (id) => [id.slice(0, id.lastIndexOf('-')), Number(id.slice(id.lastIndexOf('-') + 1))]
  const [epochA, offsetA] = cut(a)
  const [epochB, offsetB] = cut(b)
  return epochA !== epochB || offsetA > offsetB
}

// ---- messages ----------------------------------------------------------------------------------

function onMessage(msg) {
  logLine($('messages'), `${msg.channel} ${msg.event} #${msg.offset} ${JSON.stringify(msg.data)}`, '', msg.id)
  if (msg.channel === 'orders') showOrder(msg.data, msg.id)
  else if (msg.channel === 'notifications') showUnread(msg.data, msg.id)
  else if (msg.channel === 'chat') showChat(msg)
}

const orderRows = new Map()

function showOrder(order, id, { quiet = false } = {}) {
  const tbody = $('orders')
  let row = orderRows.get(order.orderId)
  if (row && !isNewer(id, row.dataset.id)) return
  tbody.querySelector('.empty')?.remove()
  if (!row) {
    row = document.createElement('tr')
    for (let i = 0; i < 5; i++) row.append(document.createElement('td'))
    row.cells[2].className = 'num'
    orderRows.set(order.orderId, row)
  }
  row.dataset.id = id
  row.cells[0].textContent = `#${order.orderId}`
  row.cells[1].textContent = order.customer
  row.cells[2].textContent = `¥${Number(order.amount).toFixed(2)}`
  const tag = document.createElement('span')
  tag.className = 'status-tag'
  tag.dataset.s = order.status
  tag.textContent = order.status
  row.cells[3].replaceChildren(tag)
  row.cells[4].textContent = new Date(order.updatedAt).toLocaleTimeString()
  // Newest change on top; replaying the animation marks the row that just changed.
  row.classList.remove('fresh')
  if (!quiet) {
    void row.offsetWidth
    row.classList.add('fresh')
  }
  placeByUpdate(tbody, row, order.updatedAt)
  while (tbody.rows.length > 8) {
    const last = tbody.rows[tbody.rows.length - 1]
    for (const [id, r] of orderRows) if (r === last) orderRows.delete(id)
    last.remove()
  }
}

/** Keeps rows sorted newest first (a snapshot may arrive after newer live rows). */
function placeByUpdate(tbody, row, updatedAt) {
  row.dataset.updated = updatedAt
  const before = [...tbody.rows].find((r) => r !== row && r.dataset.updated < updatedAt)
  if (before) tbody.insertBefore(row, before)
  else tbody.append(row)
}

let unreadId = null

function showUnread({ unread, latest }, id) {
  if (!isNewer(id, unreadId)) return
  unreadId = id
  const badge = $('unread')
  badge.hidden = unread === 0
  badge.textContent = unread > 99 ? '99+' : String(unread)
  $('latest').textContent = unread === 0 ? 'No unread notifications.' : `Latest: ${latest}`
}

$('mark-read').addEventListener('click', async () => {
  // An ordinary HTTP call; the new count (0) comes back to every open page through the channel.
  const response = await fetch('/demo/notifications/read', { method: 'POST' }).catch((error) => error)
  if (!(response instanceof Response) || !response.ok) logEvent('mark-read request failed', 'error')
})

function showChat(msg) {
  const li = document.createElement('li')
  const name = document.createElement('b')
  name.textContent = msg.data.name || 'anonymous'
  const time = document.createElement('time')
  time.textContent = `#${msg.offset}`
  li.append(name, document.createTextNode(msg.data.text), time)
  const list = $('chat')
  list.append(li)
  while (list.children.length > MAX_LINES) list.firstElementChild.remove()
  list.scrollTop = list.scrollHeight
}

// ---- chat publish ------------------------------------------------------------------------------

const text = $('chat-text')
const nameInput = $('chat-name')
nameInput.value = localStorage.getItem('pushline-demo-name') ?? ''
text.addEventListener('input', () => {
  const count = [...text.value].length
  $('chat-count').textContent = String(count)
  $('chat-count').className = count > 500 ? 'too-long' : ''
})

$('chat-form').addEventListener('submit', async (event) => {
  event.preventDefault()
  if (!client) return
  localStorage.setItem('pushline-demo-name', nameInput.value)
  const result = $('chat-result')
  // No client-side length check on purpose: the server's onPublish hook is the authority, and the
  // page shows its PUBLISH_REJECTED answer.
  try {
    const ack = await client.publish('chat', { name: nameInput.value.trim(), text: text.value })
    result.textContent = `stored at ${ack.id}`
    result.className = 'ok'
    text.value = ''
    text.dispatchEvent(new Event('input'))
  } catch (error) {
    result.textContent = `${error.code ?? 'error'}: ${error.message}`
    result.className = 'bad'
  }
})

// ---- log -----------------------------------------------------------------------------------------

function logEvent(text, kind = '') {
  logLine($('events'), text, kind)
}

function logLine(list, text, kind, title) {
  const li = document.createElement('li')
  if (kind) li.className = kind
  if (title) li.title = title
  const time = document.createElement('time')
  time.textContent = new Date().toLocaleTimeString()
  li.append(time, document.createTextNode(text))
  list.prepend(li)
  while (list.children.length > MAX_LINES) list.lastElementChild.remove()
}

if (typeof Pushline === 'undefined') {
  logEvent('error: /pushline.iife.min.js did not load (run `npm run build`)', 'error')
} else {
  start($('picker').value ? $('picker').value.split(',') : undefined)
}
