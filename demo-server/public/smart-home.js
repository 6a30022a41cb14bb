// The smart-home card: devices that speak MQTT to the demo's embedded broker, seen through pushline
// (the server's MQTT bridge publishes their messages into channels named like their topics), on
// whatever transport the page's client uses. app.js hands its client over: smartHome.attach(client)
// when it starts one, smartHome.detach() when it stops it.
'use strict'

window.smartHome = (() => {
  const CHANNELS = ['home/livingroom/climate', 'home/light/state', 'home/plug/status', 'home/plug/power']
  const card = document.createElement('section')
  card.className = 'card smart-home'
  card.innerHTML = `
    <h2>Smart home <small>MQTT devices through <code>pushline/mqtt-bridge</code></small></h2>
    <div class="devices">
      <div class="device"><span class="label">Living room</span>
        <strong id="sh-temperature">–</strong><span id="sh-humidity" class="label"></span></div>
      <div class="device"><span class="label">Light</span>
        <strong id="sh-light">unknown</strong>
        <button type="button" id="sh-switch" disabled>Switch</button>
        <span id="sh-command" class="label"></span></div>
      <div class="device"><span class="label">Smart plug</span>
        <strong id="sh-plug">unknown</strong><span id="sh-watts" class="label"></span></div>
    </div>
    <p class="hint">The light shows its <em>acknowledged</em> state: the switch publishes to
      <code>home/light/set</code>; the server forwards it to MQTT and acks only after the broker did;
      the light then reports <code>home/light/state</code>. The plug loses power every ~40 s: the
      broker publishes its last will.</p>`
  document.querySelector('main.grid')?.prepend(card)
  const $ = (id) => document.getElementById(id)

  let client = null
  let subscriptions = []
  let offState = null
  let lightOn = null
  /** Newest message id shown per channel, so a snapshot never overwrites a newer live message. */
  const shownLive = new Set()

  function show(channel, value, live) {
    if (!live && shownLive.has(channel)) return
    if (live) shownLive.add(channel)
    if (channel === 'home/livingroom/climate') {
      $('sh-temperature').textContent = `${value.temperature.toFixed(1)} °C`
      $('sh-humidity').textContent = `${value.humidity.toFixed(0)} % RH`
    } else if (channel === 'home/light/state') {
      lightOn = value.on
      $('sh-light').textContent = value.on ? 'on' : 'off'
      $('sh-light').dataset.on = String(value.on)
      $('sh-switch').disabled = false
      $('sh-switch').textContent = value.on ? 'Turn off' : 'Turn on'
    } else if (channel === 'home/plug/status') {
      $('sh-plug').textContent = value.online ? 'online' : `offline${value.reason ? ` — ${value.reason}` : ''}`
      $('sh-plug').dataset.online = String(value.online)
      if (!value.online) $('sh-watts').textContent = ''
    } else if (channel === 'home/plug/power') {
      $('sh-watts').textContent = `${value.watts} W`
    }
  }

  async function loadSnapshot() {
    try {
      const { devices } = await (await fetch('/demo/snapshot', { cache: 'no-store' })).json()
      if (!devices) return
      if (devices.climate) show('home/livingroom/climate', devices.climate, false)
      show('home/light/state', devices.light, false)
      show('home/plug/status', devices.plug, false)
    } catch {
      // The live messages fill the card in anyway.
    }
  }

  $('sh-switch').addEventListener('click', async () => {
    if (!client || lightOn === null) return
    const on = !lightOn
    $('sh-switch').disabled = true
    $('sh-command').textContent = `sending {"on":${on}}…`
    try {
      const ack = await client.publish('home/light/set', { on })
      $('sh-command').textContent = `broker acked (#${ack.offset}); waiting for the light`
    } catch (error) {
      $('sh-command').textContent = `failed: ${error.code}`
    } finally {
      $('sh-switch').disabled = false
    }
  })

  return {
    attach(next) {
      client = next
      shownLive.clear()
      subscriptions = CHANNELS.map((channel) =>
        // The bridge's messages carry the device's payload, decoded, in data.payload.
        client.subscribe(channel, (message) => {
          if (message.data?.format === 'json') show(channel, message.data.payload, true)
          if (channel === 'home/light/state') $('sh-command').textContent = ''
        }),
      )
      offState = client.on('state', (state) => {
        if (state === 'open') void loadSnapshot()
      })
    },
    detach() {
      for (const subscription of subscriptions) subscription.unsubscribe()
      subscriptions = []
      offState?.()
      client = null
    },
  }
})()
