// The negotiation card: one client with every transport, automatic negotiation, subscribed to
// `ticks` (numbered messages in a burst every 4 s, then silence). Switch the network at the top of the page and watch it fall back (with the reasons), go
// straight to the remembered winner next time, upgrade in the background, and still receive every
// number once, in order (the inspector's sequence check).
'use strict'
demo.scenario({
  id: 'negotiation',
  title: 'Negotiation under a bad network',
  classic: 'auto',
  area: 'wide network-card',
  lesson: 'Every transport, in order of preference: websocket, sse, long-polling, short-polling, iframe. A transport is blamed only once another one reached the server; the winner is remembered per URL; better ones are probed every 15 s.',
  body: `
    <p class="sequence"><strong class="received">0</strong> ticks received · last <strong class="last">–</strong> · <span class="verdict">waiting</span></p>
    <p class="hint fallbacks">No fallback yet.</p>`,
  clientOptions: () => ({ upgradeProbeMs: 15_000 }),
  start({ $, subscribe, inspector }) {
    let received = 0
    const update = () => {
      const { duplicates, outOfOrder, fallbacks } = inspector.summary()
      $('.verdict').textContent = duplicates === 0 && outOfOrder === 0 ? '✓ each once, in order' : `✗ ${duplicates} duplicates, ${outOfOrder} out of order`
      $('.verdict').className = `verdict ${duplicates === 0 && outOfOrder === 0 ? 'ok' : 'bad'}`
      $('.fallbacks').textContent = fallbacks.length ? `Moves: ${fallbacks.join(' · ')}` : 'No fallback yet.'
    }
    subscribe('ticks', (message) => {
      received++
      $('.received').textContent = String(received)
      $('.last').textContent = String(message.data.n)
      update()
    })
    const timer = setInterval(update, 1000)
    return () => clearInterval(timer)
  },
})
