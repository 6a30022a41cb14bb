import { PushError } from '../errors.js'
import { streamFactory } from './http.js'
import type { TransportFactory } from './transport.js'

/**
 * The iframe stream (protocol.md 3.7), for browsers without WebSocket and EventSource: a hidden
 * `<iframe>` loads `<base>/iframe?cursor=…&origin=<location.origin>`, whose scripts post each frame
 * to this page. Publishes go by `POST <base>/publish`. Browsers only; it carries no token (the
 * server authenticates the iframe by its cookies).
 */
export function iframe(): TransportFactory {
  return streamFactory(
    'iframe',
    'iframe',
    (context) => (url, deliver, fail) => {
        // Node, workers: fail the attempt with the reason (negotiation moves to the next transport).
        if (typeof document !== 'object') throw new PushError('NO_TRANSPORT', 'iframe needs a browser page (document)', { transport: 'iframe' })
        url.searchParams.set('origin', location.origin)
        const element = document.createElement('iframe')
        let ended: unknown
        // Only frames posted by our iframe's document, from the server's origin: another frame on
        // the page, or another window, could post anything.
        const onMessage = (event: MessageEvent): void => {
          if (event.source === element.contentWindow && event.origin === url.origin) deliver(String(event.data))
        }
        const start = (): void => {
          addEventListener('message', onMessage)
          element.style.display = 'none'
          element.src = url.href
          // The document is complete: recycled (its close frame came first), or failed (an error
          // page, a cut). Messages it posted may still be queued, so judge a moment later.
          element.onload = () => {
            ended = context.timers.setTimeout(
              () => fail(new PushError('TRANSPORT_FAILED', 'iframe stream ended', { transport: 'iframe' })),
              50,
            )
          }
          document.body.appendChild(element)
        }
        // A document still loading in the page would keep the page's own load from completing.
        if (document.readyState === 'complete') start()
        else addEventListener('load', start)
        return () => {
          context.timers.clearTimeout(ended)
          removeEventListener('load', start)
          removeEventListener('message', onMessage)
          element.remove()
        }
      },
    // Chromium tells the page nothing when the document's connection is cut (no `load`, no
    // error; the document stays `loading`): only the stream's silence shows it.
    true,
  )
}
