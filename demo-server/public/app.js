// The demo page's frame: one card per scenario, each with a PushClient of its own on the transport
// that scenario is classically built with (the picker switches it to any other, or to automatic
// negotiation), an inspector per client, and the network switch that reconnects every client
// through one of the server's hostile proxies. The scenarios themselves are in scenarios/*.js; each
// calls demo.scenario({ ... }) with its markup and what to do with a fresh client. `html()` comes
// from inspector.js, loaded first.
'use strict'

const ALL_TRANSPORTS = ['websocket', 'sse', 'long-polling', 'short-polling', 'iframe']

window.demo = {
  /** The network the clients go through: 'direct' or a hostile proxy's id. */
  network: 'direct',
  /** From /demo/setup: the demo users and the hostile networks (id, port, summary, expect). */
  setup: null,
  /** id → Inspector, for the page's tests and the heartbeat countdown. */
  inspectors: new Map(),
  cards: new Map(),

  /** The push URL for the current network: this origin, or a proxy's port on this host. */
  pushUrl() {
    const profile = this.setup?.networks.find(({ id }) => id === this.network)
    const url = new URL('/push', location.href)
    if (profile) url.port = String(profile.port)
    return url.href
  },

  /**
   * Declares a scenario card. `classic`: the transport it is classically built with ('auto' for
   * negotiation). `start(context)` subscribes on a fresh client; it runs again after every switch,
   * and may return a function that undoes what it set up. `clientOptions()`: more client options.
   */
  scenario(definition) {
    const card = createCard(definition)
    this.cards.set(definition.id, card)
    return card
  },

  /** Restarts every card's client (after a network switch). */
  restartAll() {
    for (const card of this.cards.values()) card.restart()
  },
}

function createCard({ id, title, classic, lesson, body, start, clientOptions, area = '' }) {
  const section = html('section', { className: `card scenario ${area}`, id })
  const picker = html('select', { className: 'picker', title: 'transports this card’s client may use' }, [
    html('option', { value: 'classic' }, [classic === 'auto' ? 'auto (negotiated)' : `${classic} (classic)`]),
    ...(classic === 'auto' ? [] : [html('option', { value: 'auto' }, ['auto (negotiated)'])]),
    ...ALL_TRANSPORTS.filter((name) => name !== classic).map((name) => html('option', { value: name }, [`${name} only`])),
  ])
  const header = html('header', {}, [html('h2', {}, [title]), html('span', { className: 'approach' }, [classic === 'auto' ? 'any transport' : classic]), picker])
  const content = html('div', { className: 'content' })
  content.innerHTML = body
  const inspectorRoot = html('div', { className: 'inspector' })
  const details = html('details', { className: 'inspector-box' }, [html('summary', {}, ['Transport inspector']), inspectorRoot])
  section.append(header, html('p', { className: 'lesson' }, [lesson]), content, details)
  document.getElementById('cards').append(section)
  const inspector = new Inspector(inspectorRoot)
  demo.inspectors.set(id, inspector)
  const $ = (selector) => section.querySelector(selector)

  let client = null
  let stopScenario = null

  const transports = () => {
    const value = picker.value
    if (value === 'classic') return classic === 'auto' ? ALL_TRANSPORTS : [classic]
    if (value === 'auto') return ALL_TRANSPORTS
    return [value]
  }

  const card = {
    id,
    section,
    inspector,
    get client() {
      return client
    },
    restart() {
      stopScenario?.()
      client?.close()
      inspector.reset()
      const options = inspector.instrument({ url: demo.pushUrl(), transports: transports(), ...clientOptions?.() })
      client = new Pushline.PushClient(options)
      inspector.attach(client)
      section.dataset.network = demo.network
      stopScenario =
        start({
          client,
          $,
          /** client.subscribe, watched by the inspector. */
          subscribe(channel, listener, options) {
            const subscription = client.subscribe(channel, listener, options)
            inspector.watch(subscription, options)
            return subscription
          },
          inspector,
        }) ?? null
      client.connect()
    },
  }
  picker.addEventListener('change', () => card.restart())
  return card
}

// ---- the network switch --------------------------------------------------------------------------

async function main() {
  if (typeof Pushline === 'undefined') {
    document.getElementById('cards').textContent = 'error: /pushline.iife.min.js did not load (run `npm run build`)'
    return
  }
  demo.setup = await (await fetch('/demo/setup', { cache: 'no-store' })).json()
  const select = document.getElementById('network')
  for (const { id, summary } of demo.setup.networks) select.append(html('option', { value: id, title: summary }, [id]))
  const explain = () => {
    const profile = demo.setup.networks.find(({ id }) => id === demo.network)
    document.getElementById('network-summary').textContent = profile
      ? `${profile.summary} Expect: ${profile.expect} (port ${profile.port})`
      : 'Straight to the server: every card on its classic transport, the negotiation card on WebSocket.'
  }
  select.addEventListener('change', () => {
    demo.network = select.value
    document.body.dataset.network = demo.network
    explain()
    demo.restartAll()
  })
  explain()
  demo.restartAll()
}

window.addEventListener('DOMContentLoaded', () => void main())
