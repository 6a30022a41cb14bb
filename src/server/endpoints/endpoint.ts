import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'

/**
 * What the server's route table maps a path under `<base>/` to (`ws`, `sse`,
 * `poll`, `iframe`, `publish`). A transport is one endpoint: its file holds
 * the HTTP (or upgrade) handling, its Connection class and its frame encoding.
 */
export interface Endpoint {
  /** Answers a request for this endpoint. Never rejects: every failure is answered to the client. */
  handle(req: IncomingMessage, res: ServerResponse, query: URLSearchParams): void | Promise<void>
  /** Takes over an upgrade request; the router answers upgrades of endpoints without one 404. */
  handleUpgrade?(req: IncomingMessage, socket: Duplex, head: Buffer): void
  /** Stops taking new clients (server shutdown); the hub closes the connections. */
  close?(): void
}
