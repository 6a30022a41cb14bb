// The pushline demo: one node:http server with pushline attached at /push, a page with the six
// scenarios server push is usually taught with, four hostile networks in front of it, and a small
// API for the page (sign in, mark read).
//
//   npm run demo                       (builds, then runs this file)
//   PORT=3000 HOST=0.0.0.0 node demo-server/server.js
//
// Two nodes sharing one Redis (history, offsets and fan-out in Redis: a client can resume on either):
//   REDIS_URL=redis://127.0.0.1:6379 PORT=8080 node demo-server/server.js
//   REDIS_URL=redis://127.0.0.1:6379 PORT=8081 FEEDS=off node demo-server/server.js
// (FEEDS=off: only one node runs the simulated feeds; the other serves and relays them.)

import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import { createPushServer } from 'pushline/server'
import { startHostileNetwork } from './hostile-network.js'
import { LIGHT_COMMANDS, startMqttDevices } from './mqtt-devices.js'
import { authorize, onPublish, presence, startFeeds, USERS } from './scenarios.js'

const PORT = Number(process.env.PORT || 8080)
const HOST = process.env.HOST ?? '127.0.0.1'
const REDIS_URL = process.env.REDIS_URL
const FEEDS = process.env.FEEDS !== 'off'
if (!Number.isInteger(PORT) || PORT < 0 || PORT > 65535) {
  console.error(`demo: PORT must be a port number, got ${JSON.stringify(process.env.PORT)}`)
  process.exit(1)
}

// ---- demo sign-in --------------------------------------------------------------------------------

// A demo login: pick one of USERS, get a random token (in the response, for the client's `token`
// option, and as a cookie, for the iframe stream, which cannot send headers). No passwords: it
// shows per-user authorization, not how to authenticate people.
const TOKEN_COOKIE = 'pushline-demo-token'
const MAX_TOKENS = 1000
/** token → userId, the oldest dropped first beyond MAX_TOKENS (what pages can make us hold is bounded). */
const tokens = new Map()

function signIn(userId) {
  const token = randomBytes(18).toString('base64url')
  tokens.set(token, userId)
  if (tokens.size > MAX_TOKENS) tokens.delete(tokens.keys().next().value)
  return token
}

// ---- push server -------------------------------------------------------------------------------

// The in-memory broker by default; with REDIS_URL, RedisBroker from its own entry (loaded only then).
const broker = REDIS_URL ? new (await import('pushline/redis')).RedisBroker({ url: REDIS_URL, historySize: 1000 }) : undefined

/** The page's own origins: it reaches the push server through the hostile proxies (other ports) too. */
let pageOrigins = new Set()

const push = createPushServer({
  broker,
  heartbeatMs: 10_000,
  historySize: 1000,
  // Signed-in pages send their token; everyone else is an anonymous connection (`true`).
  authenticate: ({ token }) => {
    if (token === undefined) return true
    const userId = tokens.get(token)
    return userId ? { userId } : false
  },
  authCookie: TOKEN_COOKIE,
  authorize,
  presence,
  // The page at http://host:PORT talks to the proxies at http://host:<their port>: another origin.
  allowedOrigins: (origin) => pageOrigins.has(origin),
  onPublish: (context) => onPublish(context, { channel: LIGHT_COMMANDS, onPublish: devices.onPublish }),
})

// ---- static files and the page's API -------------------------------------------------------------

const publicDir = new URL('./public/', import.meta.url)
const distDir = new URL('../dist/', import.meta.url)
const TYPES = { html: 'text/html; charset=utf-8', js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8', map: 'application/json' }

/** Every file the page needs, by URL path. Nothing else on disk is reachable. */
const files = {
  '/': { dir: publicDir, name: 'index.html' },
  '/pushline.iife.min.js': { dir: distDir, name: 'pushline.iife.min.js' },
  '/pushline.iife.min.js.map': { dir: distDir, name: 'pushline.iife.min.js.map' },
}
for (const name of [
  'index.html', 'style.css', 'app.js', 'inspector.js', 'network.js',
  'scenarios/unread-badge.js', 'scenarios/config-center.js', 'scenarios/orders.js',
  'scenarios/chat.js', 'scenarios/smart-home.js', 'scenarios/counter.js',
]) {
  files[`/${name}`] = { dir: publicDir, name }
}

let feeds
let network

const http = createServer((req, res) => {
  handle(req, res).catch((error) => {
    console.error(`demo: ${req.method} ${req.url} failed: ${error.message}`)
    if (!res.headersSent) res.writeHead(500)
    res.end()
  })
})

const json = (res, status, body, headers = {}) =>
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', ...headers }).end(JSON.stringify(body))

async function handle(req, res) {
  const { pathname } = new URL(req.url ?? '/', 'http://localhost')

  if (req.method === 'GET' && pathname === '/demo/setup') {
    // What the page needs to know: the users it may sign in as, and the networks it can switch to.
    return json(res, 200, { users: USERS, networks: network.profiles })
  }
  if (req.method === 'POST' && pathname === '/demo/login') {
    const userId = new URL(req.url, 'http://localhost').searchParams.get('user')
    if (!USERS.includes(userId)) return json(res, 400, { error: `user must be one of ${USERS.join(', ')}` })
    const token = signIn(userId)
    return json(res, 200, { userId, token }, { 'Set-Cookie': `${TOKEN_COOKIE}=${token}; Path=/; HttpOnly; SameSite=Lax` })
  }
  if (req.method === 'POST' && pathname === '/demo/notifications/read') {
    await feeds?.markAllRead()
    res.writeHead(204).end()
    return
  }

  const file = Object.hasOwn(files, pathname) ? files[pathname] : undefined
  if (!file || (req.method !== 'GET' && req.method !== 'HEAD')) {
    res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found\n')
    return
  }
  const type = TYPES[file.name.slice(file.name.lastIndexOf('.') + 1)]
  try {
    const body = await readFile(new URL(file.name, file.dir))
    res.writeHead(200, { 'Content-Type': type, 'Content-Length': body.length, 'Cache-Control': 'no-cache' })
    res.end(req.method === 'HEAD' ? undefined : body)
  } catch (error) {
    const hint = file.dir === distDir ? ' (run `npm run build`)' : ''
    res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`cannot read ${file.name}${hint}\n`)
    console.error(`demo: cannot serve ${pathname}: ${error.message}${hint}`)
  }
}

// pushline owns everything under /push (its WebSocket, SSE, poll, iframe and publish endpoints).
push.attach(http, { path: '/push' })

// The smart home: an embedded MQTT broker, simulated devices, and the bridge into `push`.
const devices = await startMqttDevices(push)

// ---- start and stop ------------------------------------------------------------------------------

http.on('error', (error) => {
  console.error(`demo: cannot listen on ${HOST}:${PORT}: ${error.message}`)
  process.exit(1)
})
await new Promise((resolve) => http.listen(PORT, HOST, resolve))
const { port } = http.address()
const shown = HOST === '0.0.0.0' || HOST === '::' ? 'localhost' : HOST
pageOrigins = new Set([`http://${shown}:${port}`, `http://localhost:${port}`, `http://127.0.0.1:${port}`, `http://[::1]:${port}`])

// The hostile networks listen where the page is served, and forward to this server.
network = await startHostileNetwork({ host: HOST === '0.0.0.0' || HOST === '::' ? '127.0.0.1' : HOST, port }, { host: HOST })
feeds = FEEDS ? await startFeeds(push) : undefined

console.log(`pushline demo: http://${shown}:${port}/   (push endpoint http://${shown}:${port}/push)`)
for (const { id, port: proxyPort } of network.profiles) console.log(`  hostile network ${id}: http://${shown}:${proxyPort}/push`)
console.log(REDIS_URL ? `broker: Redis at ${REDIS_URL}` : 'broker: in memory (set REDIS_URL to share one Redis between nodes)')
console.log('Ctrl+C to stop')

let stopping = false
async function stop() {
  if (stopping) process.exit(1)
  stopping = true
  feeds?.stop()
  await network.close()
  await devices.close()
  await push.close()
  http.closeAllConnections()
  http.close(() => process.exit(0))
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)
