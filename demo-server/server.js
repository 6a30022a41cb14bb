// The pushline demo: one node:http server with pushline attached at /push, a small page, and three
// feeds from the scenarios push is used for (order status, an unread badge, a chat room).
//
//   npm run demo                       (builds, then runs this file)
//   PORT=3000 HOST=0.0.0.0 node demo-server/server.js
//
// Two nodes sharing one Redis (history, offsets and fan-out in Redis: a client can resume on either):
//   REDIS_URL=redis://127.0.0.1:6379 PORT=8080 node demo-server/server.js
//   REDIS_URL=redis://127.0.0.1:6379 PORT=8081 FEEDS=off node demo-server/server.js
// (FEEDS=off: only one node runs the simulated feeds; the other serves and relays them.)
//
// The feeds are simulated (there is no real shop behind them), but everything the page shows travels
// through pushline exactly as an application's messages would.

import { readFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import { createPushServer, PushError } from 'pushline/server'

const PORT = Number(process.env.PORT || 8080)
const HOST = process.env.HOST ?? '127.0.0.1'
const MAX_CHAT_CHARS = 500
const REDIS_URL = process.env.REDIS_URL
const FEEDS = process.env.FEEDS !== 'off'
if (!Number.isInteger(PORT) || PORT < 0 || PORT > 65535) {
  console.error(`demo: PORT must be a port number, got ${JSON.stringify(process.env.PORT)}`)
  process.exit(1)
}

const publicDir = new URL('./public/', import.meta.url)
const distDir = new URL('../dist/', import.meta.url)

// ---- push server -------------------------------------------------------------------------------

// The in-memory broker by default; with REDIS_URL, RedisBroker from its own entry (loaded only then).
const broker = REDIS_URL ? new (await import('pushline/redis')).RedisBroker({ url: REDIS_URL, historySize: 1000 }) : undefined

const push = createPushServer({
  broker,
  heartbeatMs: 20_000,
  historySize: 1000,
  // Browsers may publish to `chat` only, and only short non-empty text. The feeds below publish with
  // push.publish(), which is the server's own authority and does not pass through this hook.
  onPublish: ({ channel, data }) => {
    if (channel !== 'chat') throw new PushError('PUBLISH_REJECTED', `${channel} is read-only for browsers`)
    const text = typeof data === 'object' && data !== null ? data.text : undefined
    if (typeof text !== 'string' || text.trim() === '') throw new PushError('PUBLISH_REJECTED', 'message is empty')
    if ([...text].length > MAX_CHAT_CHARS) {
      throw new PushError('PUBLISH_REJECTED', `message is longer than ${MAX_CHAT_CHARS} characters`)
    }
    const name = typeof data.name === 'string' ? data.name : ''
    if (name.length > 40) throw new PushError('PUBLISH_REJECTED', 'name is longer than 40 characters')
  },
})

// ---- static files --------------------------------------------------------------------------------

/** Every file the page needs, by URL path. Nothing else on disk is reachable. */
const files = {
  '/': { dir: publicDir, name: 'index.html', type: 'text/html; charset=utf-8' },
  '/index.html': { dir: publicDir, name: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { dir: publicDir, name: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { dir: publicDir, name: 'style.css', type: 'text/css; charset=utf-8' },
  '/pushline.iife.min.js': { dir: distDir, name: 'pushline.iife.min.js', type: 'text/javascript; charset=utf-8' },
  '/pushline.iife.min.js.map': { dir: distDir, name: 'pushline.iife.min.js.map', type: 'application/json' },
}

const http = createServer((req, res) => {
  handle(req, res).catch((error) => {
    console.error(`demo: ${req.method} ${req.url} failed: ${error.message}`)
    if (!res.headersSent) res.writeHead(500)
    res.end()
  })
})

async function handle(req, res) {
  const { pathname } = new URL(req.url ?? '/', 'http://localhost')

  if (req.method === 'GET' && pathname === '/demo/snapshot') {
    // The current state, with the id of the message that produced each part: the page loads this
    // once connected and keeps whichever is newer, the snapshot or a live message.
    const body = JSON.stringify({ orders: [...recentOrders.values()], notifications: lastUnread })
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' }).end(body)
    return
  }

  if (req.method === 'POST' && pathname === '/demo/notifications/read') {
    try {
      await markAllRead()
      res.writeHead(204).end()
    } catch (error) {
      console.error(`demo: mark-read failed: ${error.message}`)
      res.writeHead(500).end()
    }
    return
  }

  const file = Object.hasOwn(files, pathname) ? files[pathname] : undefined
  if (!file || (req.method !== 'GET' && req.method !== 'HEAD')) {
    res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found\n')
    return
  }
  try {
    const body = await readFile(new URL(file.name, file.dir))
    res.writeHead(200, { 'Content-Type': file.type, 'Content-Length': body.length, 'Cache-Control': 'no-cache' })
    res.end(req.method === 'HEAD' ? undefined : body)
  } catch (error) {
    const hint = file.dir === distDir ? ' (run `npm run build`)' : ''
    res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`cannot read ${file.name}${hint}\n`)
    console.error(`demo: cannot serve ${pathname}: ${error.message}${hint}`)
  }
}

// pushline owns everything under /push (its WebSocket, SSE and publish endpoints).
push.attach(http, { path: '/push' })

// ---- feeds ---------------------------------------------------------------------------------------

// Order status: an e-commerce back office where staff must see status changes at once.
const ORDER_FLOW = ['created', 'paid', 'packed', 'shipped', 'delivered']
const CUSTOMERS = ['Li Wei', 'Zhang Min', 'Wang Fang', 'Chen Jie', 'Liu Yang', 'Zhao Lei']
let nextOrderId = 10_231
const openOrders = []
/** Last update of the most recent orders, with its message id, for /demo/snapshot. */
const recentOrders = new Map()

function newOrder() {
  const order = {
    orderId: nextOrderId++,
    customer: CUSTOMERS[Math.floor(Math.random() * CUSTOMERS.length)],
    amount: Math.round((20 + Math.random() * 480) * 100) / 100,
    step: 0,
  }
  openOrders.push(order)
  return order
}

async function orderTick() {
  // Keep three to five orders in flight; advance one of them per tick.
  const order = openOrders.length < 3 || (openOrders.length < 5 && Math.random() < 0.3)
    ? newOrder()
    : openOrders[Math.floor(Math.random() * openOrders.length)]
  const status = ORDER_FLOW[order.step]
  const update = {
    orderId: order.orderId,
    customer: order.customer,
    amount: order.amount,
    status,
    message: `Order #${order.orderId} is now ${status}`,
    updatedAt: new Date().toISOString(),
  }
  const { id } = await push.publish('orders', update, { event: 'order-update' })
  recentOrders.delete(order.orderId)
  recentOrders.set(order.orderId, { ...update, id })
  if (recentOrders.size > 8) recentOrders.delete(recentOrders.keys().next().value)
  order.step += 1
  if (order.step >= ORDER_FLOW.length) openOrders.splice(openOrders.indexOf(order), 1)
}

// Unread badge: the value the page shows on its bell, pushed instead of polled every 3 s.
const NOTICES = [
  'Your invoice for October is ready',
  'A customer left a 5-star review',
  'Stock of "USB-C cable" is below 10',
  'Refund request for order #10198',
  'New login from Chrome on Windows',
]
let unread = 0
/** The last unread-count message with its id, for /demo/snapshot. */
let lastUnread = null

async function publishUnread(latest) {
  const data = { unread, latest, at: new Date().toISOString() }
  const { offset, id } = await push.publish('notifications', data, { event: 'unread-count' })
  // A tick and a mark-read may overlap; keep the later message.
  if (!lastUnread || offset > lastUnread.offset) lastUnread = { ...data, offset, id }
}

async function notificationTick() {
  unread += 1
  await publishUnread(NOTICES[Math.floor(Math.random() * NOTICES.length)])
}

async function markAllRead() {
  unread = 0
  await publishUnread(null)
}

/** Runs `task` every `ms` ± 25 %, logging (not crashing on) failures. */
function every(ms, task) {
  let timer
  const schedule = () => {
    timer = setTimeout(async () => {
      try {
        await task()
      } catch (error) {
        console.error(`demo: feed failed: ${error.message}`)
      }
      schedule()
    }, ms * (0.75 + Math.random() * 0.5))
  }
  schedule()
  return () => clearTimeout(timer)
}

const stopFeeds = FEEDS ? [every(2_000, orderTick), every(6_000, notificationTick)] : []

// ---- start and stop ------------------------------------------------------------------------------

http.on('error', (error) => {
  console.error(`demo: cannot listen on ${HOST}:${PORT}: ${error.message}`)
  process.exit(1)
})
http.listen(PORT, HOST, () => {
  const shown = HOST === '0.0.0.0' || HOST === '::' ? 'localhost' : HOST
  console.log(`pushline demo: http://${shown}:${PORT}/   (push endpoint http://${shown}:${PORT}/push)`)
  console.log(REDIS_URL ? `broker: Redis at ${REDIS_URL}` : 'broker: in memory (set REDIS_URL to share one Redis between nodes)')
  console.log('Ctrl+C to stop')
})

let stopping = false
async function stop() {
  if (stopping) process.exit(1)
  stopping = true
  for (const stopFeed of stopFeeds) stopFeed()
  await push.close()
  http.closeAllConnections()
  http.close(() => process.exit(0))
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)

