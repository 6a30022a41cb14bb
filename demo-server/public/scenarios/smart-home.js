// 5. Smart home, on MQTT: devices speak MQTT to the demo's embedded broker (aedes), and the server's
// MQTT bridge carries their topics into channels of the same names, and the page's light commands
// back to MQTT. The page itself reads them over any web transport.
'use strict'
{
  const CHANNELS = ['home/livingroom/climate', 'home/light/state', 'home/plug/status', 'home/plug/power']

  demo.scenario({
    id: 'smart-home',
    title: 'Smart home',
    classic: 'auto',
    lesson: 'MQTT between the devices and the broker; pushline/mqtt-bridge into channels named like the topics; any web transport to the page. The light shows its acknowledged state; the plug loses power every ~40 s and the broker publishes its last will.',
    body: `
      <div class="devices">
        <div class="device"><span class="label">Living room</span><strong class="temperature">–</strong><span class="humidity label"></span></div>
        <div class="device"><span class="label">Light</span><strong class="light">unknown</strong>
          <button type="button" class="switch" disabled>Switch</button><span class="command label"></span></div>
        <div class="device"><span class="label">Smart plug</span><strong class="plug">unknown</strong><span class="watts label"></span></div>
      </div>`,
    start({ $, subscribe, client }) {
      let lightOn = null
      const show = (channel, value) => {
        if (channel === 'home/livingroom/climate') {
          $('.temperature').textContent = `${value.temperature.toFixed(1)} °C`
          $('.humidity').textContent = `${value.humidity.toFixed(0)} % RH`
        } else if (channel === 'home/light/state') {
          lightOn = value.on
          $('.light').textContent = value.on ? 'on' : 'off'
          $('.light').dataset.on = String(value.on)
          $('.switch').disabled = false
          $('.switch').textContent = value.on ? 'Turn off' : 'Turn on'
        } else if (channel === 'home/plug/status') {
          $('.plug').textContent = value.online ? 'online' : `offline${value.reason ? ` — ${value.reason}` : ''}`
          $('.plug').dataset.online = String(value.online)
          if (!value.online) $('.watts').textContent = ''
        } else if (channel === 'home/plug/power') {
          $('.watts').textContent = `${value.watts} W`
        }
      }
      for (const channel of CHANNELS) {
        // The bridge's messages carry the device's payload, decoded, in data.payload. rewind: 1 —
        // each device's last message first, so the card shows the house as it is at once.
        const subscription = subscribe(
          channel,
          (message) => {
            if (message.data?.format === 'json') show(channel, message.data.payload)
          },
          { rewind: 1 },
        )
        // The light's first state is from history; a later one answers the switch.
        if (channel === 'home/light/state') subscription.on('message', () => ($('.command').textContent = ''))
      }
      const onSwitch = async () => {
        if (lightOn === null) return
        const on = !lightOn
        $('.switch').disabled = true
        $('.command').textContent = `sending {"on":${on}}…`
        try {
          const ack = await client.publish('home/light/set', { on })
          $('.command').textContent = `broker acked (#${ack.offset}); waiting for the light`
        } catch (error) {
          $('.command').textContent = `failed: ${error.code}`
        } finally {
          $('.switch').disabled = false
        }
      }
      $('.switch').addEventListener('click', onSwitch)
      return () => {
        $('.switch').removeEventListener('click', onSwitch)
      }
    },
  })
}
