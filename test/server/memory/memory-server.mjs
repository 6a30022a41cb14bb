// A pushline server in a child process, for tests that weigh the server's memory
// apart from the test's own. Started with --expose-gc by memory-probe.ts; talks over IPC.
//
// argv[2]: JSON { options, channels, messages, payloadBytes }: the server's options and the
// history it publishes before it reports ready. The module under test is dist/server.js
// (npm test builds it first), or PUSHLINE_SERVER_MODULE.
import http from 'node:http'
import { pathToFileURL } from 'node:url'

const setup = JSON.parse(process.argv[2] ?? '{}')
const modulePath = process.env.PUSHLINE_SERVER_MODULE || new URL('../../../dist/server.js', import.meta.url).pathname
const { createPushServer } = await import(pathToFileURL(modulePath).href)

// setup.slowPublish: an onPublish hook that holds every publish until the test sends `release`.
let release
const released = new Promise((resolve) => (release = resolve))
let hookCalls = 0
const onPublish = setup.slowPublish
  ? async () => {
      hookCalls++
      await released
    }
  : undefined
const push = createPushServer({ logger: { error: () => {} }, onPublish, ...setup.options })
const server = http.createServer()
push.attach(server, { path: '/push' })

const payload = 'x'.repeat(setup.payloadBytes ?? 0)
for (let c = 0; c < (setup.channels ?? 0); c++) {
  for (let m = 0; m < (setup.messages ?? 0); m++) await push.publish(`history.${c}`, { m, payload })
}

function weigh() {
  globalThis.gc?.()
  globalThis.gc?.()
  const usage = process.memoryUsage()
  return {
    heapUsed: usage.heapUsed,
    external: usage.external,
    rss: usage.rss,
    maxRss: process.resourceUsage().maxRSS * 1024,
    stats: push.stats(),
    hookCalls,
  }
}

process.on('message', async (message) => {
  if (message.type === 'weigh') process.send({ type: 'weight', id: message.id, ...weigh() })
  else if (message.type === 'release') {
    release()
    process.send({ type: 'released', id: message.id })
  } else if (message.type === 'publish') {
    await push.publish(message.channel, message.data)
    process.send({ type: 'published', id: message.id })
  } else if (message.type === 'exit') {
    await push.close()
    server.closeAllConnections()
    server.close(() => process.exit(0))
    setTimeout(() => process.exit(0), 2000).unref()
  }
})
process.on('disconnect', () => process.exit(0))

server.listen(0, '127.0.0.1', () => {
  process.send({ type: 'ready', port: server.address().port, ...weigh() })
})
