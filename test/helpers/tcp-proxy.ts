import net from 'node:net'

/**
 * A loopback TCP proxy that tests put between a client and the server to
 * simulate what networks do: cut every link at once, freeze links without
 * closing them (half-open TCP: the socket looks fine, nothing flows), or
 * refuse new connections for a while.
 */
export interface TcpProxy {
  readonly port: number
  /** Destroys every open link (both sides see a reset); returns how many there were. */
  cutAll(): number
  /** Stops forwarding on every open link without closing it. New links still work. */
  freezeAll(): void
  /** While refusing, new links are closed at once. */
  refuse(on: boolean): void
  /** Points new links at another target port. */
  retarget(port: number): void
  /** Number of links currently open. */
  readonly links: number
  close(): Promise<void>
}

export interface TcpProxyOptions {
  /** Cut (reset) every link this long after it opened, as a proxy that kills long connections does. */
  cutAfterMs?: number
}

export async function startTcpProxy(targetPort: number, { cutAfterMs }: TcpProxyOptions = {}): Promise<TcpProxy> {
  let target = targetPort
  let refusing = false
  const pairs = new Set<{ client: net.Socket; upstream: net.Socket; frozen: boolean }>()

  const server = net.createServer((client) => {
    if (refusing) {
      client.destroy()
      return
    }
    const upstream = net.connect(target, '127.0.0.1')
    const pair = { client, upstream, frozen: false }
    pairs.add(pair)
    const forward = (from: net.Socket, to: net.Socket) => {
      from.on('data', (chunk) => {
        if (!pair.frozen) to.write(chunk)
      })
    }
    forward(client, upstream)
    forward(upstream, client)
    const drop = () => {
      pairs.delete(pair)
      client.destroy()
      upstream.destroy()
    }
    if (cutAfterMs !== undefined) {
      const timer = setTimeout(() => {
        client.resetAndDestroy()
        drop()
      }, cutAfterMs)
      client.on('close', () => clearTimeout(timer))
    }
    client.on('close', drop)
    upstream.on('close', drop)
    client.on('error', drop)
    upstream.on('error', drop)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address() as net.AddressInfo

  return {
    port: address.port,
    cutAll() {
      const cut = pairs.size
      for (const { client, upstream } of pairs) {
        client.resetAndDestroy()
        upstream.destroy()
      }
      pairs.clear()
      return cut
    },
    freezeAll() {
      for (const pair of pairs) pair.frozen = true
    },
    refuse(on) {
      refusing = on
    },
    retarget(port) {
      target = port
    },
    get links() {
      return pairs.size
    },
    async close() {
      for (const { client, upstream } of pairs) {
        client.destroy()
        upstream.destroy()
      }
      pairs.clear()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
