// Four bad networks between the page and the demo server, in this process (no nginx needed). Each
// listens on a loopback port of its own and forwards to the demo server; the page's network switch
// points every client at one of them, so you can watch pushline negotiate, fall back and resume.
//
//   no-upgrade  an HTTP proxy that does not know WebSocket: it drops `Upgrade`, so the handshake is
//               answered as a plain GET (old corporate proxies, some CDNs on their free plans)
//   buffering   an HTTP proxy that also drops `Upgrade`, and holds every response until it ends,
//               then gzips it (antivirus gateways, nginx with proxy_buffering on): a stream that
//               never ends never arrives
//   idle-cut    a TCP proxy that cuts a connection after `idleCutMs` without a byte either way
//               (NAT gateways, load balancers with short idle timeouts)
//   flaky       a TCP proxy that delays every chunk by `latencyMs` (in order) and kills each
//               connection after a random lifetime (mean `meanLifetimeMs`): a train in a tunnel
//
// Everything a proxy holds is bounded: at most `maxConnections` connections per proxy, and the
// buffering proxy gives up on a response over `maxBufferedBytes`.

import { createServer as createHttpServer, request as httpRequest } from 'node:http'
import { createServer as createTcpServer, connect as tcpConnect } from 'node:net'
import { gzipSync } from 'node:zlib'

/** Headers that belong to one hop, never forwarded by a proxy (RFC 9110 7.6.1), plus Upgrade. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade'])

const withoutHopByHop = (headers) =>
  Object.fromEntries(Object.entries(headers).filter(([name]) => !HOP_BY_HOP.has(name.toLowerCase())))

/**
 * Starts the four proxies in front of `upstream` (`{ host, port }`). Returns their descriptions
 * (`{ id, port, summary, expect }`, for the page) and close().
 */
export async function startHostileNetwork(
  upstream,
  { host = '127.0.0.1', idleCutMs = 3000, latencyMs = [80, 400], meanLifetimeMs = 8000, maxConnections = 200, maxBufferedBytes = 1 << 20 } = {},
) {
  const proxies = [
    {
      id: 'no-upgrade',
      summary: 'An HTTP proxy that strips the Upgrade header: WebSocket handshakes fail.',
      expect: 'websocket fails its handshake; SSE wins.',
      server: httpProxy(upstream, { buffer: false, maxBufferedBytes }),
    },
    {
      id: 'buffering',
      summary: 'An HTTP proxy that strips Upgrade and holds each response until it ends, then gzips it.',
      expect: 'websocket fails; the SSE stream never arrives; long polling (raced after 400 ms) wins.',
      server: httpProxy(upstream, { buffer: true, maxBufferedBytes }),
    },
    {
      id: 'idle-cut',
      summary: `A TCP proxy that cuts any connection idle for ${idleCutMs / 1000} s.`,
      expect: 'quiet connections die and resume; busy ones (and polls) live.',
      server: tcpProxy(upstream, (client, server) => {
        // A socket's timeout counts reads and writes: the client side sees traffic both ways.
        client.setTimeout(idleCutMs, () => {
          client.destroy()
          server.destroy()
        })
      }),
    },
    {
      id: 'flaky',
      summary: `A TCP proxy that adds ${latencyMs[0]}–${latencyMs[1]} ms of latency and drops connections at random.`,
      expect: 'reconnects every few seconds; every message still arrives once, in order.',
      server: tcpProxy(upstream, (client, server) => {
        const lifetime = Math.max(1000, -Math.log(1 - Math.random()) * meanLifetimeMs)
        const timer = setTimeout(() => {
          client.destroy()
          server.destroy()
        }, lifetime)
        client.once('close', () => clearTimeout(timer))
        return { delay: latencyMs }
      }),
    },
  ]
  for (const { server } of proxies) {
    server.maxConnections = maxConnections
    await new Promise((resolve) => server.listen(0, host, resolve))
  }
  return {
    profiles: proxies.map(({ id, summary, expect, server }) => ({ id, summary, expect, port: server.address().port })),
    async close() {
      await Promise.all(proxies.map(({ server }) => server.closeAll()))
    },
  }
}

/**
 * An HTTP proxy. WebSocket handshakes reach the upstream as plain GETs (whose answer goes back),
 * as through a proxy that does not know `Upgrade`. With `buffer`, each response is held until it
 * ends, then sent gzipped if the client accepts it.
 */
function httpProxy(upstream, { buffer, maxBufferedBytes }) {
  const server = trackSockets(createHttpServer())
  server.on('request', (req, res) => {
    const forwarded = httpRequest(
      { host: upstream.host, port: upstream.port, method: req.method, path: req.url, headers: withoutHopByHop(req.headers) },
      (answer) => {
        const headers = withoutHopByHop(answer.headers)
        if (!buffer) {
          res.writeHead(answer.statusCode ?? 502, headers)
          answer.pipe(res)
          return
        }
        const chunks = []
        let size = 0
        answer.on('data', (chunk) => {
          size += chunk.length
          if (size > maxBufferedBytes) {
            answer.destroy()
            res.destroy()
            return
          }
          chunks.push(chunk)
        })
        answer.on('end', () => {
          let body = Buffer.concat(chunks)
          if (body.length > 0 && /\bgzip\b/.test(req.headers['accept-encoding'] ?? '')) {
            body = gzipSync(body)
            headers['content-encoding'] = 'gzip'
          }
          headers['content-length'] = String(body.length)
          res.writeHead(answer.statusCode ?? 502, headers).end(body)
        })
      },
    )
    forwarded.on('error', () => res.headersSent ? res.destroy() : res.writeHead(502).end())
    // The browser gave up (a handshake deadline, say): so does the proxy, upstream too.
    res.on('close', () => forwarded.destroy())
    req.pipe(forwarded)
  })
  // A WebSocket handshake, forwarded without its Upgrade headers: the upstream answers it as an
  // ordinary request, and the answer goes back on the raw socket.
  server.on('upgrade', (req, socket) => {
    socket.on('error', () => {})
    const forwarded = httpRequest(
      { host: upstream.host, port: upstream.port, method: req.method, path: req.url, headers: withoutHopByHop(req.headers) },
      (answer) => {
        const head = [`HTTP/1.1 ${answer.statusCode} ${answer.statusMessage}`]
        for (const [name, value] of Object.entries(withoutHopByHop(answer.headers))) {
          for (const one of [value].flat()) head.push(`${name}: ${one}`)
        }
        socket.write(`${head.join('\r\n')}\r\nconnection: close\r\n\r\n`)
        answer.pipe(socket)
      },
    )
    forwarded.on('error', () => socket.destroy())
    socket.on('close', () => forwarded.destroy())
    forwarded.end()
  })
  return server
}

/**
 * A TCP proxy: every connection gets one to the upstream. `setup(client, server)` adds the
 * hostility, and may return `{ delay: [min, max] }` to delay every chunk, keeping their order.
 */
function tcpProxy(upstream, setup) {
  return trackSockets(
    createTcpServer((client) => {
      const server = tcpConnect(upstream.port, upstream.host)
      for (const socket of [client, server]) {
        socket.on('error', () => {})
        socket.on('close', () => {
          client.destroy()
          server.destroy()
        })
      }
      const { delay } = setup(client, server) ?? {}
      if (!delay) {
        client.pipe(server)
        server.pipe(client)
        return
      }
      relayLate(client, server, delay)
      relayLate(server, client, delay)
    }),
  )
}

/**
 * Copies `from` to `to`, each chunk late by a random delay in [min, max], never overtaking the one
 * before. One timer at a time, for the oldest chunk: timers of different durations that fall due in
 * the same millisecond may fire in any order, and TCP carries bytes in order.
 */
function relayLate(from, to, [min, max]) {
  const queue = [] // { chunk, dueAt }, and `null` for the end
  let timer
  const release = () => {
    timer = undefined
    while (queue.length > 0 && (queue[0] === null || queue[0].dueAt <= Date.now())) {
      const head = queue.shift()
      if (to.destroyed) return
      if (head === null) to.end()
      else to.write(head.chunk)
    }
    if (queue.length > 0) timer = setTimeout(release, queue[0].dueAt - Date.now())
  }
  let lastDueAt = 0
  from.on('data', (chunk) => {
    lastDueAt = Math.max(lastDueAt, Date.now() + min + Math.random() * (max - min))
    queue.push({ chunk, dueAt: lastDueAt })
    timer ??= setTimeout(release, lastDueAt - Date.now())
  })
  from.on('end', () => {
    queue.push(null)
    timer ??= setTimeout(release, 0)
  })
}

/** Adds `closeAll()`: stop listening and destroy every connection (a server's close() waits for them). */
function trackSockets(server) {
  const sockets = new Set()
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  server.closeAll = () =>
    new Promise((resolve) => {
      server.close(() => resolve())
      for (const socket of sockets) socket.destroy()
    })
  return server
}
