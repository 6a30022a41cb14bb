// 4. Chat, on WebSocket: both ways on one socket. Group rooms, private messages that only their two
// users can see (the server's per-channel `authorize`), who is online (presence), typing, and the
// heartbeat that keeps the socket honest.
'use strict'
{
  let signedIn = null // { userId, token } after the demo login

  demo.scenario({
    id: 'chat',
    title: 'Chat',
    classic: 'websocket',
    area: 'wide',
    lesson: 'Sign in as one of the demo users (no password: it shows authorization, not login). Rooms are chat:<room>; a private message goes to dm:<a>:<b>, which the server lets only a and b subscribe to or publish on.',
    body: `
      <div class="chat-bar">
        <label>you <select class="user"><option value="">anonymous (read only)</option></select></label>
        <label>room <select class="room"><option>general</option><option>random</option></select></label>
        <span class="online" title="presence on the room">online: <span class="members">–</span></span>
      </div>
      <ol class="messages" data-empty="No messages since you opened this page. Sign in and say something."></ol>
      <p class="typing hint"></p>
      <form class="chat-form" autocomplete="off">
        <select class="to" title="send to"><option value="">room</option></select>
        <input class="text" placeholder="Say something (the server rejects empty or over 500 characters)">
        <button type="submit">Send</button>
      </form>
      <p class="hint"><span class="result">Sign in to send.</span> · <span class="heartbeat">heartbeat: –</span></p>`,
    clientOptions: () => (signedIn ? { token: signedIn.token } : {}),
    start({ $, subscribe, client, inspector }) {
      // The user list comes with the page's setup (loaded before any card starts).
      if ($('.user').options.length === 1) {
        for (const user of demo.setup.users) $('.user').append(html('option', { value: user }, [user]))
      }
      const room = $('.room').value
      const me = signedIn?.userId
      $('.messages').replaceChildren()
      $('.to').replaceChildren(html('option', { value: '' }, [`#${room}`]), ...demo.setup.users.filter((user) => user !== me && me).map((user) => html('option', { value: user }, [`only ${user}`])))
      $('.result').textContent = me ? `Signed in as ${me}.` : 'Sign in to send.'

      const show = (message, privateWith) => {
        const { from, text, at } = message.data
        const line = html('li', { className: privateWith ? 'private' : '' }, [
          html('b', {}, [privateWith ? `${from} → ${from === me ? privateWith : 'you'}` : from]),
          text,
          html('time', {}, [`${new Date(at).toLocaleTimeString([], { hour12: false })} #${message.offset}`]),
        ])
        $('.messages').append(line)
        while ($('.messages').children.length > 100) $('.messages').firstElementChild.remove()
        $('.messages').scrollTop = $('.messages').scrollHeight
      }

      const roomSubscription = subscribe(`chat:${room}`, (message) => show(message))
      roomSubscription.on('presence', () => {
        $('.members').textContent = roomSubscription.presence().map(({ id }) => (demo.setup.users.includes(id) ? id : 'guest')).join(', ') || '–'
      })
      // Typing notices: shown for 3 s after the last one from each user.
      const typing = new Map()
      const showTyping = () => {
        const now = Date.now()
        const who = [...typing].filter(([user, until]) => user !== me && until > now).map(([user]) => user)
        $('.typing').textContent = who.length ? `${who.join(', ')} ${who.length > 1 ? 'are' : 'is'} typing…` : ''
      }
      subscribe(`typing:${room}`, (message) => {
        typing.set(message.data.from, Date.now() + 3000)
        showTyping()
      })
      if (me) {
        for (const other of demo.setup.users.filter((user) => user !== me)) {
          subscribe(dmChannel(me, other), (message) => show(message, other))
        }
      }

      let lastTypingAt = 0
      const onInput = () => {
        if (!me || Date.now() - lastTypingAt < 2000) return
        lastTypingAt = Date.now()
        client.publish(`typing:${room}`, {}).catch(() => {})
      }
      const onSubmit = async (event) => {
        event.preventDefault()
        const to = $('.to').value
        try {
          const ack = await client.publish(to ? dmChannel(me, to) : `chat:${room}`, { text: $('.text').value })
          $('.result').textContent = `stored at ${ack.id}`
          $('.text').value = ''
        } catch (error) {
          $('.result').textContent = `${error.code}: ${error.message}`
        }
      }
      $('.text').addEventListener('input', onInput)
      $('.chat-form').addEventListener('submit', onSubmit)
      // The heartbeat, as the inspector sees it: the server pings when the link is quiet, and the
      // client declares it dead if nothing arrives by the deadline (heartbeat + heartbeatGraceMs).
      const timer = setInterval(() => {
        showTyping()
        const { everyMs, lastPingAt, lastFrameAt } = inspector.heartbeat
        if (!everyMs || !lastFrameAt) return
        const deadline = lastFrameAt + everyMs + inspector.heartbeatGraceMs
        $('.heartbeat').textContent = `heartbeat every ${everyMs / 1000} s · last ping ${lastPingAt ? new Date(lastPingAt).toLocaleTimeString([], { hour12: false }) : '–'} · liveness deadline in ${Math.max(0, Math.round((deadline - Date.now()) / 1000))} s`
      }, 1000)
      return () => {
        clearInterval(timer)
        $('.text').removeEventListener('input', onInput)
        $('.chat-form').removeEventListener('submit', onSubmit)
      }
    },
  })

  const dmChannel = (a, b) => `dm:${[a, b].sort().join(':')}`
  const card = document.getElementById('chat')
  card.querySelector('.room').addEventListener('change', () => demo.cards.get('chat').restart())
  card.querySelector('.user').addEventListener('change', async (event) => {
    const userId = event.target.value
    signedIn = null
    if (userId) {
      // The response carries the token (for the client's `token` option) and sets it as a cookie
      // (for the iframe stream, which cannot send headers).
      const response = await fetch(`/demo/login?user=${encodeURIComponent(userId)}`, { method: 'POST' })
      signedIn = await response.json()
    }
    demo.cards.get('chat').restart()
  })
}
