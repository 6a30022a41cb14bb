import NodeWebSocket from 'isomorphic-ws'
import { PushError } from '../errors.js'
import { decodeServerFrame } from '../protocol/decode.js'
import { endpointUrl } from './http.js'
import type { DuplexTransport, TransportContext, TransportFactory, WebSocketConstructor, WebSocketLike } from './transport.js'

const noop = (): void => {}

/** `pushline.auth.<base64url(utf8(token))>`, no padding (protocol.md 3.1). */
function authProtocol(token: string): string {
  let binary = ''
  for (const byte of new TextEncoder().encode(token)) binary += String.fromCharCode(byte)
  return 'pushline.auth.' + btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

/** Close codes the server uses on purpose (protocol.md 3.2); anything else is a failure. */
function closeError(code: number, reason: string): PushError | undefined {
  if (code === 4401) return new PushError('UNAUTHORIZED', reason || 'unauthorized', { transport: 'websocket' })
  if (code === 1000 || code === 1001 || code === 1012) return undefined
  return new PushError('TRANSPORT_FAILED', `WebSocket closed with code ${code}${reason ? ': ' + reason : ''}`, {
    transport: 'websocket',
  })
}

/**
 * The WebSocket transport (`<base>/ws`). Uses `options.WebSocket` if given, else `ws` in Node and
 * the global `WebSocket` in browsers (where bundlers drop `isomorphic-ws`, see package.json).
 */
export function websocket(): TransportFactory {
  return { name: 'websocket', create: createWebSocketTransport }
}

function createWebSocketTransport(context: TransportContext): DuplexTransport {
  let socket: WebSocketLike | undefined

  const close = (): void => {
    if (!socket) return
    // Keep an error handler: `ws` emits 'error' when a connecting socket is closed, and an
    // EventEmitter without one throws.
    socket.onopen = socket.onmessage = socket.onclose = null
    socket.onerror = noop
    socket.close(1000)
    socket = undefined
  }
  const fail = (error?: PushError): void => {
    if (!socket) return
    close()
    context.onClose(error)
  }

  return {
    name: 'websocket',
    kind: 'duplex',
    open() {
      const WebSocketClass: WebSocketConstructor | undefined =
        context.platform.WebSocket ??
        (typeof NodeWebSocket === 'function' ? (NodeWebSocket as unknown as WebSocketConstructor) : undefined) ??
        globalThis.WebSocket
      if (!WebSocketClass) {
        throw new PushError('NO_TRANSPORT', 'no WebSocket implementation: pass the WebSocket option', {
          transport: 'websocket',
        })
      }
      const protocols = ['pushline.v1']
      if (context.token) protocols.push(authProtocol(context.token))
      const ws = (socket = new WebSocketClass(endpointUrl(context.url, 'ws', true).href, protocols))
      ws.onmessage = (event: { data: unknown }) => {
        if (typeof event.data !== 'string') {
          return fail(new PushError('PROTOCOL_ERROR', 'binary WebSocket message', { transport: 'websocket' }))
        }
        // One message may batch several frames, one per line (protocol.md 3.2).
        for (const line of event.data.split('\n')) {
          if (socket !== ws) return // closed by a frame earlier in this batch
          if (!line) continue
          let frame
          try {
            frame = decodeServerFrame(line)
          } catch (error) {
            return fail(error as PushError)
          }
          if (frame) context.onFrame(frame)
        }
      }
      ws.onclose = (event: { code: number; reason: string }) => fail(closeError(event.code, event.reason))
      // The close event that follows carries the code; report the failure now anyway, so a socket
      // stuck after an error cannot stall the client.
      ws.onerror = () => fail(new PushError('TRANSPORT_FAILED', 'WebSocket error', { transport: 'websocket' }))
    },
    send(frame) {
      socket?.send(JSON.stringify(frame))
    },
    close,
  }
}
