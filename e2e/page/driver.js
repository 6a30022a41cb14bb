// The page side of e2e/page-driver.ts: the ClientDriver of test/conformance/driver.ts, run by the
// script-tag bundle's PushClient inside Chromium. It mirrors test/conformance/node-driver.ts, so
// the same suite judges the client in Node and in the browser.
/* global Pushline */
'use strict'

window.driver = (() => {
  let client
  const messages = new Map()
  const gaps = new Map()
  const subs = new Map()
  const log = { states: [], transports: [], errors: [] }

  // Short polls every 100 ms rather than the default 3 s, for the reason the suite's server sends
  // heartbeats every 300 ms: cases about liveness and resume then take well under a second. Every
  // other transport is given by name, with its defaults.
  const transportOption = (name) => (name === 'short-polling' ? Pushline.shortPolling({ intervalMs: 100 }) : name)

  const need = () => {
    if (!client) throw new Error('driver: create() first')
    return client
  }

  return {
    create(options) {
      const extra = {}
      for (const key of ['heartbeatGraceMs', 'handshakeTimeoutMs', 'publishTimeoutMs']) {
        if (options[key] !== undefined) extra[key] = options[key]
      }
      client = new Pushline.PushClient({
        url: options.url,
        transports: [transportOption(options.transport)],
        reconnect: { initialDelayMs: 50, maxDelayMs: 400 },
        ...extra,
      })
      client.on('state', (state) => log.states.push(state))
      client.on('transport', (name) => log.transports.push(name))
      client.on('error', (error) => log.errors.push(error.code))
    },
    connect() {
      need().connect()
    },
    async subscribe(channel, options) {
      const received = []
      const seenGaps = []
      let sub
      try {
        sub = need().subscribe(
          channel,
          (msg) => {
            received.push({ channel: msg.channel, event: msg.event, data: msg.data, offset: msg.offset, id: msg.id })
          },
          options,
        )
      } catch (error) {
        return { ok: false, code: error.code, message: error.message }
      }
      messages.set(channel, received)
      gaps.set(channel, seenGaps)
      sub.on('gap', (gap) => seenGaps.push({ ...gap }))
      subs.set(channel, sub)
      // On an open client, resolve once the server confirmed the subscription. A subscription
      // without a position is live from when the server registers it (protocol.md 4, rule 1), and
      // the suite publishes as soon as subscribe() returns. In Node the client's frame (or new SSE
      // stream) reaches the server first; from a page it travels through Chromium's network
      // process and loses that race, SSE always (it must open a new stream with the new cursor).
      if (need().state === 'open') {
        await new Promise((resolve) => {
          const timer = setTimeout(done, 5000)
          const off = sub.on('subscribed', done)
          function done() {
            clearTimeout(timer)
            off()
            resolve()
          }
        })
      }
      return { ok: true }
    },
    unsubscribe(channel) {
      subs.get(channel)?.unsubscribe()
      subs.delete(channel)
    },
    async publish(channel, data, options) {
      try {
        const ack = await need().publish(channel, data, options)
        return { ok: true, channel: ack.channel, offset: ack.offset, id: ack.id }
      } catch (error) {
        return { ok: false, code: error.code, message: error.message }
      }
    },
    state: () => need().state,
    transport: () => need().transport,
    messages: (channel) => [...(messages.get(channel) ?? [])],
    gaps: (channel) => [...(gaps.get(channel) ?? [])],
    log: () => ({ states: [...log.states], transports: [...log.transports], errors: [...log.errors] }),
    close() {
      client?.close()
      client = undefined
    },
  }
})()
