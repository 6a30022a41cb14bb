// 1. Unread badge, on short polling: the oldest way to "push", asking every few seconds. Right for
// a count that changes now and then, where a few seconds of delay cost nothing.
'use strict'
{
  const BELL = '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M12 22a2.5 2.5 0 0 0 2.5-2.5h-5A2.5 2.5 0 0 0 12 22Zm7-6V11a7 7 0 0 0-5.5-6.84V3.5a1.5 1.5 0 0 0-3 0v.66A7 7 0 0 0 5 11v5l-2 2v1h18v-1l-2-2Z"/></svg>'

  demo.scenario({
    id: 'unread-badge',
    title: 'Unread badge',
    classic: 'short-polling',
    lesson: 'A GET every 3 s (shortPolling’s intervalMs); an empty answer is a cheap 204. The server publishes the count and the latest five to notifications.',
    body: `
      <div class="badge-row">
        <div class="bell">${BELL}<span class="badge" hidden>0</span></div>
        <button type="button" class="mark-read">Mark all read</button>
      </div>
      <p class="hint poll-info">Not polled yet.</p>
      <ol class="previews" data-empty="No unread notifications."></ol>`,
    start({ $, subscribe, inspector }) {
      const show = ({ unread, latest }) => {
        $('.badge').hidden = unread === 0
        $('.badge').textContent = unread > 99 ? '99+' : String(unread)
        $('.previews').replaceChildren(...latest.map(({ text, at }) => html('li', {}, [html('time', {}, [new Date(at).toLocaleTimeString([], { hour12: false })]), text])))
      }
      // rewind: 1 — the newest message from history first: the badge as it is now, then live ones.
      subscribe('notifications', (message) => show(message.data), { rewind: 1 })
      // The poll's rhythm, from the inspector: each answer (a message or a 204 `ping`) is a frame.
      const timer = setInterval(() => {
        const { lastFrameAt, everyMs } = inspector.heartbeat
        $('.poll-info').textContent = lastFrameAt
          ? `Transport ${inspector.transport ?? '…'}; last answer ${new Date(lastFrameAt).toLocaleTimeString([], { hour12: false })}${inspector.transport === 'short-polling' ? `; next poll in ≤ ${(everyMs ?? 3000) / 1000} s` : ''}.`
          : 'Not polled yet.'
      }, 500)
      return () => clearInterval(timer)
    },
  })

  // An ordinary HTTP call; the new count (0) comes back to every open page through the channel.
  document.querySelector('#unread-badge .mark-read').addEventListener('click', () => {
    fetch('/demo/notifications/read', { method: 'POST' }).catch(() => {})
  })
}
