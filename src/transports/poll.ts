import { decodeServerFrame } from '../protocol/decode.js'
import { formatCursor } from '../protocol/position.js'
import { refusal, request, streamFactory, toPushError } from './http.js'
import type { TransportFactory } from './transport.js'

/**
 * Long and short polling (protocol.md 3.5, 3.6): `GET <base>/poll`, one request after the other,
 * each with the positions of the moment, so that consecutive polls can hit different server
 * processes. A poll loop is the "stream" of {@link streamFactory}: its first poll is the
 * handshake, and a change of subscriptions starts a new loop that takes over after its `hello`.
 *
 * A poll is silent while held, so the liveness deadline is rebased onto the poll: the `hello` handed
 * to the core carries the poll's hold (or the interval) as `heartbeatMs`, and every answer counts as
 * a frame (a 204 as a `ping`). The core then drops a poll not answered within hold + grace (3.5), or
 * interval + grace (3.6), and aborts it.
 */
export function pollTransport(
  name: 'long-polling' | 'short-polling',
  holdMs: number | undefined,
  intervalMs: number,
): TransportFactory {
  return streamFactory(name, 'poll', (context) => (url, deliver, fail) => {
        const { timers } = context
        const query = url.searchParams
        let controller: AbortController | undefined
        let timer: unknown
        let hold = holdMs
        const poll = (): void => {
          query.set('cursor', formatCursor(context.cursor()))
          if (hold !== undefined) query.set('hold', String(hold))
          const current = (controller = new AbortController())
          request(context, url, { signal: current.signal })
            .then(([status, body, retryMs]) => {
              if (current !== controller) return
              // Not pushline (an app's page, another server): every answer of ours is frames or empty.
              if (status > 204 || (body && body[0] !== '{')) throw refusal(name, status, body, url, retryMs)
              if (status === 204) deliver({ type: 'ping' })
              for (const line of body.split('\n')) {
                let frame = line ? decodeServerFrame(line) : undefined
                if (frame?.type === 'hello') {
                  query.set('session', frame.session)
                  // Long polls are held no longer than the server's heartbeat interval, so that a
                  // dead link is caught as fast as on the streaming transports.
                  hold = intervalMs ? 0 : Math.min(holdMs ?? frame.heartbeatMs, frame.pollHoldMs ?? frame.heartbeatMs)
                  frame = { ...frame, heartbeatMs: hold || intervalMs }
                }
                deliver(frame)
                if (current !== controller) return // the frame closed this loop
              }
              if (intervalMs) timer = timers.setTimeout(poll, intervalMs)
              else poll()
            })
            .catch((error: unknown) => {
              if (current === controller) fail(toPushError(error, name, url))
            })
        }
        poll()
        return () => {
          controller?.abort()
          controller = undefined
          timers.clearTimeout(timer)
        }
      })
}
