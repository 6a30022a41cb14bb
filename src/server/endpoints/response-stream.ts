import type { IncomingMessage, ServerResponse } from 'node:http'
import { Connection } from '../hub/connection.js'
import type { FlushScheduler } from '../hub/connection.js'

/**
 * A client on one long-lived HTTP response (SSE, the iframe stream): each
 * flush appends a chunk. Liveness is whether the response drains: the client
 * sends nothing back, but a dead link stops taking data.
 */
export abstract class ResponseStreamConnection extends Connection {
  protected readonly res: ServerResponse
  /** Since when written output has been waiting to drain; undefined when drained. */
  #stalledSince: number | undefined

  constructor(res: ServerResponse, scheduler: FlushScheduler) {
    super(scheduler)
    this.res = res
  }

  /** False once the response has ended or broken: nothing more can be written. */
  protected get writable(): boolean {
    return !this.res.destroyed && !this.res.writableEnded
  }

  protected writeChunk(chunk: string | Buffer): void {
    if (this.res.write(chunk) || this.#stalledSince !== undefined) return
    // A `drain` listener only while one is awaited: an idle stream holds none.
    this.#stalledSince = Date.now()
    this.res.once('drain', () => {
      this.#stalledSince = undefined
      this.drained()
    })
  }

  protected end(): void {
    if (this.writable) this.res.end()
  }

  bufferedBytes(): number {
    return this.res.writableLength
  }

  isResponsive(now: number, deadlineMs: number): boolean {
    return this.#stalledSince === undefined || now - this.#stalledSince <= deadlineMs
  }

  terminate(): void {
    this.res.destroy()
  }
}

/**
 * Starts a long-lived response: status, headers, and the body's first bytes (`preamble`), with no
 * Nagle delay for the small chunks that follow.
 */
export function startStreamResponse(
  req: IncomingMessage,
  res: ServerResponse,
  headers: Readonly<Record<string, string>>,
  preamble: string | Buffer,
): void {
  // Proxies such as nginx buffer responses unless told not to.
  const all: Record<string, string> = { ...headers, 'X-Accel-Buffering': 'no' }
  if (req.httpVersionMajor === 1) all.Connection = 'keep-alive'
  res.writeHead(200, all)
  const socket = res.socket
  socket?.setNoDelay(true)
  // Node keeps the response's header text for the life of the response, built as a tree of about
  // 25 concatenated strings (~0.7 KiB). Flushed on its own, that very string is what the socket
  // writes, and writing flattens it in place: an idle stream then holds one flat string of its
  // bytes instead. (Written together with the first chunk, only the joined copy would be.) Corked,
  // headers and preamble still leave in one write.
  socket?.cork()
  res.flushHeaders()
  res.write(preamble)
  socket?.uncork()
}
