// Time to the first message on a first visit, behind each nginx profile of the tests
// (test/helpers/nginx.ts), in Debian's Chromium: pushline beside Socket.IO, same run, same page,
// same origin server, same proxy. Not a test: it prints a table. See bench/README.md.
//
//   npm run build && node bench/negotiation.js
//   BENCH_RUNS=5 BENCH_PROFILES=buffering-gzip,plain node bench/negotiation.js
//   BENCH_DIST=/path/to/other/dist node bench/negotiation.js   # another pushline build (before/after)
import { readFile, rm, writeFile, mkdtemp } from 'node:fs/promises'
import http from 'node:http'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { build } from 'esbuild'
import { chromium } from 'playwright-core'
import { Server as SocketIoServer } from 'socket.io'

const root = fileURLToPath(new URL('..', import.meta.url))
const dist = resolve(process.env.BENCH_DIST ?? join(root, 'dist'))
const RUNS = Math.max(1, Math.min(20, Number(process.env.BENCH_RUNS ?? 3)))
const PROFILES = (process.env.BENCH_PROFILES ?? 'websocket,plain,buffering,buffering-gzip,idle-cut').split(',')
/** A measurement that gets no message in this long counts as failed. */
const FIRST_MESSAGE_TIMEOUT_MS = 15_000
/** Both servers publish this often, so the first message follows the subscription by at most this. */
const PUBLISH_EVERY_MS = 20
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium'
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']

// The whole run is bounded: a stuck proxy or browser cannot keep it alive.
const deadline = setTimeout(() => {
  console.error('bench: over 10 minutes, stopping')
  process.exit(2)
}, 600_000)
deadline.unref()

/** test/helpers/nginx.ts, compiled for this script (its `requireBinary` import pulls vitest's `describe` along: stubbed). */
async function loadNginxHelper(dir) {
  const file = join(dir, 'nginx-helper.mjs')
  await build({
    entryPoints: [join(root, 'test/helpers/nginx.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    outfile: file,
    logLevel: 'error',
    plugins: [
      {
        name: 'no-vitest',
        setup(b) {
          b.onResolve({ filter: /^vitest$/ }, () => ({ path: 'vitest', namespace: 'stub' }))
          b.onLoad({ filter: /.*/, namespace: 'stub' }, () => ({ contents: 'export const describe = () => {}; export const beforeAll = () => {}' }))
        },
      },
    ],
  })
  return import(pathToFileURL(file).href)
}

const PAGE = `<!doctype html><meta charset="utf-8"><title>negotiation bench</title>
<script src="/pushline.iife.min.js"></script><script src="/socket.io/socket.io.min.js"></script>
<script>
  // Each resolves with the time from creating the client to its first message, and the transport then and after 2 s.
  window.firstPushline = () => new Promise((done) => {
    const started = performance.now()
    const client = new Pushline.PushClient({ url: '/push' })
    client.subscribe('bench', () => {
      const ms = performance.now() - started, first = client.transport
      setTimeout(() => { done({ ms, first, later: client.transport }); client.close() }, 2000)
    }).on('message', () => {})
    client.connect()
  })
  window.firstSocketIo = () => new Promise((done) => {
    const started = performance.now()
    const socket = io()
    socket.once('tick', () => {
      const ms = performance.now() - started, first = socket.io.engine.transport.name
      setTimeout(() => { done({ ms, first, later: socket.io.engine.transport.name }); socket.close() }, 2000)
    })
  })
</script>`

async function startOrigin() {
  const { createPushServer } = await import(pathToFileURL(join(dist, 'server.js')).href)
  const bundle = await readFile(join(dist, 'pushline.iife.min.js'))
  const server = http.createServer((request, response) => {
    if (request.url === '/') response.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(PAGE)
    else if (request.url === '/pushline.iife.min.js') response.writeHead(200, { 'Content-Type': 'text/javascript' }).end(bundle)
    else if (!request.url?.startsWith('/push') && !request.url?.startsWith('/socket.io')) response.writeHead(404).end()
  })
  // Heartbeats as each library ships them (pushline 25 s, Socket.IO 25 s ping interval).
  const push = createPushServer()
  push.attach(server, { path: '/push' })
  const io = new SocketIoServer(server)
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok))
  let n = 0
  const publisher = setInterval(() => {
    n++
    push.publish('bench', { n }).catch(() => {})
    io.emit('tick', { n })
  }, PUBLISH_EVERY_MS)
  return {
    port: server.address().port,
    async close() {
      clearInterval(publisher)
      io.close()
      await push.close()
      server.closeAllConnections()
      await new Promise((ok) => server.close(() => ok()))
    },
  }
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted.length ? sorted[Math.floor((sorted.length - 1) / 2)] : NaN
}

async function main() {
  const dir = await mkdtemp(join(tmpdir(), 'pushline-bench-'))
  const { startNginx } = await loadNginxHelper(dir)
  const origin = await startOrigin()
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS })
  const rows = []
  try {
    for (const profile of PROFILES) {
      const nginx = await startNginx(origin.port, profile)
      try {
        const results = { pushline: [], 'socket.io': [] }
        for (let run = 0; run < RUNS; run++) {
          // Alternate who goes first; a fresh context each time: a first visit, nothing remembered.
          const order = run % 2 ? ['socket.io', 'pushline'] : ['pushline', 'socket.io']
          for (const peer of order) {
            const context = await browser.newContext()
            try {
              const page = await context.newPage()
              await page.goto(`${nginx.url}/`)
              const measure = peer === 'pushline' ? 'firstPushline' : 'firstSocketIo'
              const result = await Promise.race([
                page.evaluate((name) => window[name](), measure),
                new Promise((ok) => setTimeout(() => ok(undefined), FIRST_MESSAGE_TIMEOUT_MS)),
              ])
              results[peer].push(result ?? { ms: NaN, first: 'none', later: 'none' })
            } finally {
              await context.close()
            }
          }
        }
        const line = (peer) => {
          const runs = results[peer]
          return {
            median: median(runs.map((r) => r.ms)),
            all: runs.map((r) => Math.round(r.ms)).join(' '),
            transports: [...new Set(runs.map((r) => (r.first === r.later ? r.first : `${r.first}→${r.later}`)))].join(', '),
          }
        }
        const ours = line('pushline')
        const theirs = line('socket.io')
        rows.push({ profile, ours, theirs })
        console.log(`${profile}: pushline ${ours.all} ms (${ours.transports}); socket.io ${theirs.all} ms (${theirs.transports})`)
      } finally {
        await nginx.stop()
      }
    }
  } finally {
    await browser.close()
    await origin.close()
    await rm(dir, { recursive: true, force: true })
  }
  console.log(`\ntime to first message on a first visit, Chromium, median of ${RUNS} (pushline from ${dist})`)
  console.log('profile          pushline ms  transport                      socket.io ms  transport                 ours/theirs')
  for (const { profile, ours, theirs } of rows) {
    console.log(
      `${profile.padEnd(16)} ${ours.median.toFixed(0).padStart(11)}  ${ours.transports.padEnd(30)} ${theirs.median.toFixed(0).padStart(12)}  ${theirs.transports.padEnd(25)} ${(ours.median / theirs.median).toFixed(2).padStart(11)}`,
    )
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  },
)
