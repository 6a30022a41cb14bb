// The transport inspector: a panel per PushClient that shows what the client is doing and why.
// It only watches, through what pushline offers every app:
//   - the `debug` option (a logger function): each attempt and how it ended, fallbacks, backoff,
//     state changes, `subscribed` (where a channel resumed) and gaps;
//   - the transport factories (`Pushline.websocket()` …), wrapped to see every frame that comes in:
//     byte counts, the heartbeat (`ping`) and the `hello` that says how often it comes;
//   - the `storage` option, wrapped to show the transport the client remembered from last time;
//   - the client's and the subscriptions' events, for the sequence check: per channel, every message
//     must come once, in order (offset + 1), unless a `gap` event says what was lost.
'use strict'

window.Inspector = class Inspector {
  /** `root`: the element to render into. */
  constructor(root) {
    this.root = root
    this.reset()
  }

  /** Listeners of every frame that comes in (the counter card shows them). */
  #frameListeners = new Set()

  /** Calls `listener` with every frame any transport of the client delivers; returns an unbind function. */
  onFrame(listener) {
    this.#frameListeners.add(listener)
    return () => this.#frameListeners.delete(listener)
  }

  reset() {
    this.state = 'idle'
    this.transport = null
    this.why = ''
    this.remembered = null
    /** Connection attempts, newest last: { transport, startedAt, endedAt, outcome }. */
    this.attempts = []
    /** State changes and fallbacks, newest last: { at, text, kind }. */
    this.timeline = []
    this.messages = 0
    this.bytes = 0
    this.reconnects = 0
    this.fallbacks = []
    this.gaps = []
    this.lastResume = null
    /** Arrival times of the last messages, for messages/s. */
    this.arrivals = []
    /** Per channel: { epoch, offset, received, duplicates, outOfOrder, missing, resumedAt, caughtUp }. */
    this.channels = new Map()
    this.heartbeat = { everyMs: null, lastPingAt: null, lastFrameAt: null }
    this.heartbeatGraceMs = 10_000
    this.render()
  }

  /**
   * The options for `new Pushline.PushClient(...)`, with the inspector's hooks added: transports by
   * name become wrapped factories, `debug` logs into the panel, `storage` reports the remembered winner.
   */
  instrument({ transports, heartbeatGraceMs = 10_000, ...options }) {
    this.heartbeatGraceMs = heartbeatGraceMs
    const factories = { websocket: Pushline.websocket, sse: Pushline.sse, 'long-polling': Pushline.longPolling, 'short-polling': Pushline.shortPolling, iframe: Pushline.iframe }
    return {
      ...options,
      heartbeatGraceMs,
      transports: transports.map((name) => this.#watchFrames(factories[name]())),
      debug: (event, details) => this.#onDebug(event, details),
      storage: {
        getItem: (key) => {
          const value = localStorage.getItem(key)
          this.#noteRemembered(value)
          return value
        },
        setItem: (key, value) => {
          localStorage.setItem(key, value)
          this.#noteRemembered(value)
        },
      },
    }
  }

  /** Watches the client's own events (`transport`, `error`). */
  attach(client) {
    client.on('transport', (transport) => {
      this.transport = transport
      // A long poll raced against a slow stream, outrun by it: the client closed it, no outcome line.
      const rank = (name) => ORDER.indexOf(name)
      for (const attempt of this.attempts) {
        if (attempt.outcome === 'pending' && rank(attempt.transport) > rank(transport)) this.#endAttempt(attempt, `outrun by ${transport}`)
      }
      this.#schedule()
    })
    client.on('error', (error) => {
      // The client gives up on attempts itself too (no hello in time): the debug log has no
      // `failed` line for those, the error event names their transport.
      const attempt = error.transport && this.#pendingAttempt(error.transport)
      if (attempt && attempt.outcome === 'pending') this.#endAttempt(attempt, `failed ${error.code}`, error.message)
      this.#note(`error ${error.code}: ${error.message}`, 'error')
    })
  }

  #pendingAttempt(transport) {
    return this.attempts.findLast((attempt) => attempt.transport === transport && attempt.endedAt === null)
  }

  #endAttempt(attempt, outcome, detail) {
    attempt.endedAt = Date.now()
    attempt.outcome = outcome
    attempt.detail = detail
    this.#schedule()
  }

  /**
   * Watches one subscription: its messages for the sequence check, its `subscribed` for resumes
   * (and, with `rewind`, for what came from history first).
   */
  watch(subscription, { rewind } = {}) {
    const channel = subscription.channel
    const seen = this.#channel(channel)
    subscription.on('message', (message) => this.#onMessage(seen, message))
    subscription.on('subscribed', ({ position }) => {
      const [epoch, offset] = splitId(position)
      // A resume (this channel had a position already) or a rewind: count what comes that is older than now.
      if (seen.epoch !== null || rewind) {
        seen.resumedAt = Date.now()
        seen.caughtUp = 0
        this.lastResume = { channel, position, at: seen.resumedAt, caughtUp: 0, rewind: seen.epoch === null }
      }
      if (seen.epoch === null || seen.epoch !== epoch) {
        seen.epoch = epoch
        seen.offset = offset
      }
      this.#schedule()
    })
    subscription.on('gap', (gap) => {
      // Delivery goes on after `to`: the messages in between are known lost, not missing.
      const [epoch, offset] = splitId(gap.to)
      seen.epoch = epoch
      seen.offset = offset
      this.#schedule()
    })
  }

  /** Numbers for tests and the page: what the panel shows. */
  summary() {
    const channels = [...this.channels.values()]
    const sum = (field) => channels.reduce((total, seen) => total + seen[field], 0)
    return {
      state: this.state,
      transport: this.transport,
      remembered: this.remembered,
      messages: this.messages,
      duplicates: sum('duplicates'),
      outOfOrder: sum('outOfOrder'),
      missing: sum('missing'),
      reconnects: this.reconnects,
      fallbacks: this.fallbacks.map(({ from, to, reason }) => `${from}→${to}:${reason}`),
      gaps: this.gaps.length,
      attempts: this.attempts.map(({ transport, outcome }) => `${transport}:${outcome}`),
      lastResume: this.lastResume,
    }
  }

  // ---- what comes in -----------------------------------------------------------------------------

  #watchFrames(factory) {
    const inspector = this
    return {
      ...factory,
      create(context) {
        return factory.create({
          ...context,
          onFrame(frame) {
            inspector.#onFrame(frame)
            context.onFrame(frame)
          },
        })
      },
    }
  }

  #onFrame(frame) {
    // The size of the frame as JSON: close to what a stream carries, without each transport's framing.
    this.bytes += JSON.stringify(frame).length
    const now = Date.now()
    this.heartbeat.lastFrameAt = now
    if (frame.type === 'hello') this.heartbeat.everyMs = frame.heartbeatMs
    if (frame.type === 'ping') this.heartbeat.lastPingAt = now
    for (const listener of this.#frameListeners) listener(frame)
    this.#schedule()
  }

  #onMessage(seen, message) {
    this.messages++
    seen.received++
    const now = Date.now()
    this.arrivals.push(now)
    while (this.arrivals.length > 0 && this.arrivals[0] < now - 10_000) this.arrivals.shift()
    const [epoch] = splitId(message.id)
    if (seen.epoch === epoch && seen.offset !== null) {
      if (message.offset <= seen.offset) seen.duplicates++
      else if (message.offset > seen.offset + 1) {
        seen.outOfOrder++
        seen.missing += message.offset - seen.offset - 1
      }
      seen.offset = Math.max(seen.offset, message.offset)
    } else {
      seen.epoch = epoch
      seen.offset = message.offset
    }
    // Messages published before the resume: caught up from history, not live.
    if (seen.resumedAt && typeof message.data?.at === 'string' && Date.parse(message.data.at) < seen.resumedAt) {
      seen.caughtUp++
      if (this.lastResume?.channel === message.channel) this.lastResume.caughtUp = seen.caughtUp
    }
    this.#schedule()
  }

  #onDebug(event, details) {
    const now = Date.now()
    if (event === 'attempt') {
      this.attempts.push({ transport: details.transport, startedAt: now, endedAt: null, outcome: 'pending' })
      if (this.attempts.length > 12) this.attempts.shift()
    } else if (event === 'hello') {
      const attempt = this.#pendingAttempt(details.transport)
      if (attempt) {
        attempt.outcome = 'hello'
        attempt.helloAt = now
      }
    } else if (event === 'failed' || event === 'closed') {
      const attempt = this.#pendingAttempt(details.transport)
      if (attempt) this.#endAttempt(attempt, event === 'failed' ? `failed ${details.code}` : attempt.outcome === 'hello' ? 'closed' : 'closed before hello', details.message)
    } else if (event === 'state') {
      if (details.state === 'reconnecting') this.reconnects++
      this.state = details.state
      this.#note(`state → ${details.state}`, details.state === 'open' ? 'ok' : '')
    } else if (event === 'fallback') {
      // An attempt the client gave up on itself (no hello in time) has no `failed` line.
      const abandoned = this.#pendingAttempt(details.from)
      if (abandoned && abandoned.outcome === 'pending' && details.reason === 'handshake-timeout') this.#endAttempt(abandoned, 'no hello in time')
      this.fallbacks.push(details)
      this.why = `${details.reason === 'upgrade' ? 'upgraded from' : 'fell back from'} ${details.from}: ${details.reason}`
      this.#note(`${details.reason === 'upgrade' ? 'upgrade' : 'fallback'} ${details.from} → ${details.to} (${details.reason})`, 'fallback')
    } else if (event === 'backoff') {
      this.#note(`backoff ${Math.round(details.delayMs)} ms before attempt ${details.attempt}`)
    } else if (event === 'gap') {
      this.gaps.push(details)
      this.#note(`gap on ${details.channel}: ${details.reason}`, 'gap')
    } else if (event === 'subscribed') {
      this.#note(`subscribed ${details.channel} at ${details.position}`)
    }
    this.#schedule()
  }

  #noteRemembered(value) {
    // pushline stores `{ w: winner, o: offered, u: until }` (src/transports/negotiate.ts); the
    // field names are kept short on purpose and stay stable across releases.
    try {
      const memory = JSON.parse(value)
      this.remembered = memory && memory.u > Date.now() ? (memory.w ?? null) : null
    } catch {
      this.remembered = null
    }
  }

  #note(text, kind = '') {
    this.timeline.push({ at: Date.now(), text, kind })
    if (this.timeline.length > 60) this.timeline.shift()
    this.#schedule()
  }

  #channel(name) {
    let seen = this.channels.get(name)
    if (!seen) {
      seen = { name, epoch: null, offset: null, received: 0, duplicates: 0, outOfOrder: 0, missing: 0, resumedAt: 0, caughtUp: 0 }
      this.channels.set(name, seen)
    }
    return seen
  }

  // ---- rendering ---------------------------------------------------------------------------------

  #scheduled = false

  /** Renders at most ~4 times a second, and the heartbeat countdown once a second. */
  #schedule() {
    if (this.#scheduled) return
    this.#scheduled = true
    setTimeout(() => {
      this.#scheduled = false
      this.render()
    }, 250)
  }

  render() {
    if (!this.root) return
    const summary = this.summary()
    const { everyMs, lastPingAt, lastFrameAt } = this.heartbeat
    const deadline = everyMs && lastFrameAt ? lastFrameAt + everyMs + this.heartbeatGraceMs : null
    const sequenceOk = summary.duplicates === 0 && summary.outOfOrder === 0
    const rate = this.arrivals.length / 10
    const resume = this.lastResume
    Object.assign(this.root.dataset, {
      state: summary.state,
      transport: summary.transport ?? '',
      sequence: sequenceOk ? 'ok' : 'broken',
    })
    this.root.replaceChildren(
      html('dl', { className: 'facts' }, [
        fact('transport', `${summary.transport ?? 'none'} · ${summary.state}`, this.why || (summary.remembered && summary.remembered === summary.transport ? 'the remembered winner' : 'first that said hello')),
        fact('remembered winner', summary.remembered ?? 'none', 'localStorage, per URL and transport list'),
        fact('messages', `${summary.messages} · ${rate.toFixed(1)}/s`, `≈ ${formatBytes(this.bytes)} of frames in`),
        fact('sequence', sequenceOk ? '✓ once, in order' : '✗ broken', `duplicates ${summary.duplicates} · out of order ${summary.outOfOrder} · gaps ${summary.gaps}`, sequenceOk ? 'ok' : 'bad'),
        fact('reconnects', String(summary.reconnects), `fallbacks ${summary.fallbacks.length}`),
        fact(
          resume?.rewind ? 'rewind' : 'last resume',
          resume ? `${resume.channel} at ${resume.position}` : '–',
          resume ? `${resume.caughtUp} ${resume.rewind ? 'replayed' : 'caught up'} from history` : 'not yet',
        ),
        fact(
          'heartbeat',
          everyMs ? `every ${everyMs / 1000} s` : '–',
          `${lastPingAt ? `last ping ${clock(lastPingAt)}` : 'no ping yet'}${deadline ? ` · deadline in ${Math.max(0, Math.round((deadline - Date.now()) / 1000))} s` : ''}`,
        ),
      ]),
      html('table', { className: 'attempts' }, [
        html('thead', {}, [html('tr', {}, ['attempt', 'outcome', 'ms'].map((text) => html('th', {}, [text])))]),
        html(
          'tbody',
          {},
          this.attempts
            .slice(-6)
            .reverse()
            .map((attempt) =>
              html('tr', { className: attempt.outcome.startsWith('failed') || attempt.outcome.includes('before') ? 'bad' : attempt.outcome === 'pending' ? '' : 'ok', title: attempt.detail ?? '' }, [
                html('td', {}, [`${clock(attempt.startedAt)} ${attempt.transport}`]),
                html('td', {}, [attempt.outcome + (attempt.detail ? `: ${attempt.detail}` : '')]),
                html('td', { className: 'num' }, [String((attempt.helloAt ?? attempt.endedAt ?? Date.now()) - attempt.startedAt)]),
              ]),
            ),
        ),
      ]),
      html(
        'ol',
        { className: 'timeline' },
        this.timeline
          .slice(-20)
          .reverse()
          .map(({ at, text, kind }) => html('li', { className: kind }, [html('time', {}, [clock(at)]), text])),
      ),
    )
  }
}

const ORDER = ['websocket', 'sse', 'long-polling', 'short-polling', 'iframe']
const splitId = (id) => {
  const cut = id.lastIndexOf('-')
  return [id.slice(0, cut), Number(id.slice(cut + 1))]
}
const clock = (ms) => new Date(ms).toLocaleTimeString([], { hour12: false })
const formatBytes = (bytes) => (bytes < 10_000 ? `${bytes} B` : `${(bytes / 1024).toFixed(0)} KiB`)

function fact(label, value, detail, kind = '') {
  return html('div', { className: kind }, [html('dt', {}, [label]), html('dd', {}, [html('strong', {}, [value]), html('span', {}, [detail])])])
}

/** A DOM element: `html('li', { className: 'x' }, ['text', otherElement])`. */
function html(tag, properties, children = []) {
  const element = Object.assign(document.createElement(tag), properties)
  element.append(...children)
  return element
}

// The heartbeat's countdown moves without any event.
setInterval(() => {
  for (const inspector of window.demo?.inspectors?.values() ?? []) inspector.render()
}, 1000)
