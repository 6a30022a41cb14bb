import NodeWebSocket from 'isomorphic-ws'
import { PushError, type ErrorCode } from '../errors.js'
import { decodeServerFrame } from '../protocol/decode.js'
import { endpointUrl } from './http.js'
import type { Transport, TransportContext, TransportFactory, WebSocketConstructor, WebSocketLike } from './transport.js'

const failure = (code: ErrorCode, message: string, closeCode?: number): PushError =>
  new PushError(code, message, { transport: 'websocket', closeCode })

/** `pushline.auth.<base64url(utf8(token))>`, no padding (protocol.md 3.1). */
const authProtocol = (token: string): string =>
  'pushline.auth.' +
  btoa(String.fromCharCode(...new TextEncoder().encode(token))).replace(/[+/=]/g, (c) => (c === '+' ? '-' : c === '/' ? '_' : ''))

/**
 * The WebSocket transport (`<base>/ws`). Uses `options.WebSocket` if given, else `ws` in Node and
 * the global `WebSocket` in browsers (where bundlers drop `isomorphic-ws`, see package.json).
 */
export function websocket(): TransportFactory {
  return { name: 'websocket', create: createWebSocketTransport }
}

function createWebSocketTransport(context: TransportContext): Transport {
  let socket: WebSocketLike | undefined

  const close = (): void => {
    if (!socket) return
    // Keep an error handler: `ws` emits 'error' when a connecting socket is closed, and an
    // EventEmitter without one throws.
    socket.onmessage = socket.onclose = null
    socket.onerror = () => {}
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
    open() {
      const WebSocketClass: WebSocketConstructor | undefined =
        context.platform.WebSocket ??
        // An empty module in browser builds (package.json `browser`), where the global is used.
        (typeof NodeWebSocket === 'function' ? (NodeWebSocket as unknown as WebSocketConstructor) : undefined) ??
        globalThis.WebSocket
      if (!WebSocketClass) throw failure('NO_TRANSPORT', 'no WebSocket (option WebSocket)')
      const protocols = ['pushline.v1']
      if (context.token) protocols.push(authProtocol(context.token))
      const ws = (socket = new WebSocketClass(endpointUrl(context.url, 'ws', true).href, protocols))
      ws.onmessage = (event: { data: unknown }) => {
        if (typeof event.data !== 'string') return fail(failure('PROTOCOL_ERROR', 'binary message'))
        // One message may batch several frames, one per line (protocol.md 3.2).
        for (const line of event.data.split('\n')) {
          if (socket !== ws) return // closed by a frame earlier in this batch
          let frame
          try {
            frame = line ? decodeServerFrame(line) : undefined
          } catch (error) {
            return fail(error as PushError)
          }
          if (frame) context.onFrame(frame)
        }
      }
      // Close codes the server uses on purpose (protocol.md 3.2): 4401, and the normal ones.
      ws.onclose = ({ code, reason }: { code: number; reason: string }) =>
        fail(
          code === 4401
            ? failure('UNAUTHORIZED', reason || 'unauthorized', code)
            : code === 1000 || code === 1001 || code === 1012
              ? undefined
              : failure('TRANSPORT_FAILED', `closed with ${code} ${reason}`, code),
        )
      // The close event that follows carries the code; report the failure now anyway, so a socket
      // stuck after an error cannot stall the client.
      ws.onerror = () => fail(failure('TRANSPORT_FAILED', 'WebSocket error'))
    },
    send(frame) {
      socket?.send(JSON.stringify(frame))
    },
    close,
  }
}
