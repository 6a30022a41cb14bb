import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { createPushServer } from '../../src/server/index.js'
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js'

export type PushServerOptions = NonNullable<Parameters<typeof createPushServer>[0]>
export type PushServer = ReturnType<typeof createPushServer>

/** A real pushline server on a free loopback port, optionally behind a TCP proxy. */
export interface PushFixture {
  /** Base URL clients use (through the proxy). */
  readonly url: string
  readonly push: PushServer
  readonly proxy: TcpProxy
  /** Direct URL of the server, bypassing the proxy. */
  readonly directUrl: string
  /** Replaces the server by a fresh one (new process state: new epochs, empty history). */
  restart(options?: PushServerOptions): Promise<void>
  close(): Promise<void>
}

async function listen(options: PushServerOptions) {
  const httpServer = http.createServer()
  const push = createPushServer(options)
  push.attach(httpServer, { path: '/push' })
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve))
  const { port } = httpServer.address() as AddressInfo
  return { httpServer, push, port }
}

async function stop(httpServer: http.Server, push: PushServer) {
  await push.close()
  httpServer.closeAllConnections()
  await new Promise<void>((resolve) => httpServer.close(() => resolve()))
}

export async function startPushFixture(options: PushServerOptions = {}): Promise<PushFixture> {
  let current = await listen(options)
  const proxy = await startTcpProxy(current.port)
  return {
    url: `http://127.0.0.1:${proxy.port}/push`,
    get push() {
      return current.push
    },
    get directUrl() {
      return `http://127.0.0.1:${current.port}/push`
    },
    proxy,
    async restart(next = options) {
      await stop(current.httpServer, current.push)
      proxy.cutAll()
      current = await listen(next)
      proxy.retarget(current.port)
    },
    async close() {
      await proxy.close()
      await stop(current.httpServer, current.push)
    },
  }
}

/** Polls `check` until it returns true, failing after `timeoutMs` with `what`. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const started = Date.now()
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
