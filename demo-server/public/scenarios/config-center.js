// 2. Config center, on long polling: what Nacos and Apollo do. A watcher's request waits at the
// server until the config changes (or the hold ends), so a change reaches every watcher within
// moments, with one request per change instead of one per interval.
'use strict'
{
  const FLAGS = ['newCheckout', 'darkMode', 'betaSearch']

  demo.scenario({
    id: 'config-center',
    title: 'Config center',
    classic: 'long-polling',
    lesson: 'Each poll is held up to the server’s heartbeat (10 s) and answered the moment the config changes. Edit on the left; every open page (try a second tab) sees it on the right.',
    body: `
      <div class="split">
        <form class="config-editor">
          <h3>Edit</h3>
          ${FLAGS.map((flag) => `<label><input type="checkbox" name="${flag}"> ${flag}</label>`).join('')}
          <label>rate limit / min <input type="number" name="rateLimitPerMinute" min="1" max="100000" required></label>
          <button type="submit">Publish config</button>
          <p class="hint result">client.publish('config', …) — the server checks it.</p>
        </form>
        <div class="config-watch">
          <h3>Watching <code>config</code></h3>
          <pre class="config-value">waiting for the current config…</pre>
          <p class="hint config-meta"></p>
        </div>
      </div>`,
    start({ $, subscribe, client }) {
      let edited = false
      const show = (config, id) => {
        const { flags, rateLimitPerMinute, editedBy, at } = config
        $('.config-value').textContent = JSON.stringify({ flags, rateLimitPerMinute }, null, 2)
        $('.config-meta').textContent = `${id} · by ${editedBy} at ${new Date(at).toLocaleTimeString([], { hour12: false })}`
        $('.config-watch').classList.remove('fresh')
        void $('.config-watch').offsetWidth
        $('.config-watch').classList.add('fresh')
        // The editor starts from the current value, until someone edits it here.
        if (!edited) {
          for (const flag of FLAGS) $(`[name=${flag}]`).checked = flags[flag]
          $('[name=rateLimitPerMinute]').value = String(rateLimitPerMinute)
        }
      }
      // rewind: 1 — the config's newest message is its current value: shown at once, then every change.
      subscribe('config', (message) => show(message.data, message.id), { rewind: 1 })
      const form = $('.config-editor')
      const onInput = () => (edited = true)
      const onSubmit = async (event) => {
        event.preventDefault()
        const config = {
          flags: Object.fromEntries(FLAGS.map((flag) => [flag, form.elements[flag].checked])),
          rateLimitPerMinute: Number(form.elements.rateLimitPerMinute.value),
        }
        try {
          const ack = await client.publish('config', config)
          $('.result').textContent = `stored at ${ack.id}`
          edited = false
        } catch (error) {
          $('.result').textContent = `${error.code}: ${error.message}`
        }
      }
      form.addEventListener('input', onInput)
      form.addEventListener('submit', onSubmit)
      return () => {
        form.removeEventListener('input', onInput)
        form.removeEventListener('submit', onSubmit)
      }
    },
  })
}
