import { PushError } from '../errors.js'
import { decodeServerFrame } from '../protocol/decode.js'
import type { PublishFrame, TransportName } from '../protocol/frames.js'
import type { TransportContext } from './transport.js'

/** `<base>/<path>` (protocol.md 3), keeping the base's query; `ws:`/`wss:` for WebSocket. */
export function endpointUrl(base: string, path: string, webSocket?: boolean): URL {
  // Relative bases (`/push`) resolve against the page in browsers.
  const url = new URL(base, globalThis.location?.href)
  url.pathname = url.pathname.replace(/\/?$/, '/' + path)
  if (webSocket) url.protocol = url.protocol.replace(/^http/, 'ws')
  return url
}

/** `Authorization: Bearer <token>` (protocol.md 3.1), or nothing without a token. */
export function authHeaders(token: string | undefined): Record<string, string> {
  return token ? { Authorization: `Bearer ${token}` } : {}
}

/**
 * `POST <base>/publish` (protocol.md 3.4), shared by the HTTP transports. The answer goes to
 * `context.onFrame` with the request's rid; a failed request fails the transport, so the core
 * resends the publish (same idempotency key) after it reconnected.
 */
export function publishOverHttp(
  context: TransportContext,
  frame: PublishFrame,
  transport: TransportName,
  isClosed: () => boolean,
  fail: (error: PushError) => void,
): void {
  const fetch = context.platform.fetch ?? globalThis.fetch
  fetch(endpointUrl(context.url, 'publish').href, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...authHeaders(context.token) },
    body: JSON.stringify(frame),
  })
    .then(async (response) => {
      const body = await response.text()
      if (isClosed()) return
      let reply
      try {
        reply = decodeServerFrame(body)
      } catch (error) {
        // A proxy's HTML error page, say: the request failed, not the protocol.
        if (response.status === 200) throw error
      }
      if (reply?.type !== 'ack' && reply?.type !== 'error') {
        throw new PushError('TRANSPORT_FAILED', `publish answered with HTTP ${response.status}`, { transport })
      }
      context.onFrame({ ...reply, rid: frame.rid })
    })
    .catch((error: unknown) => {
      if (isClosed()) return
      fail(
        error instanceof PushError
          ? error
          : new PushError('TRANSPORT_FAILED', 'publish request failed', { cause: error, transport }),
      )
    })
}
