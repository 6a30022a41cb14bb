import { fork } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import net from 'node:net'
import { fileURLToPath } from 'node:url'

// A pushline server in a child process (test/server/memory/memory-server.mjs, run with
// --expose-gc), so that a test weighs the server's memory, not its own; and a WebSocket
// client on a raw socket that sends frames and never reads a byte, the client that made the
// server queue whole replays.

const SERVER_SCRIPT = fileURLToPath(new URL('../server/memory/memory-server.mjs', import.meta.url))

export interface MemorySetup {
  /** createPushServer options (JSON only). */
  options?: Record<string, unknown>
  /** History published before the server reports ready: `history.0` .. `history.<channels-1>`. */
  channels?: number
  messages?: number
  payloadBytes?: number
  /** An onPublish hook that holds every publish until {@link MemoryServer.release}. */
  slowPublish?: boolean
}

/** The server process's memory after two full GCs, in bytes; `maxRss` is the peak resident size so far. */
export interface Weight {
  heapUsed: number
  external: number
  rss: number
  maxRss: number
  stats: { connections: number; channels: number; subscriptions: number }
  /** Calls of the slowPublish hook so far. */
  hookCalls: number
}

export interface MemoryServer {
  readonly port: number
  /** The weight once history was published, before any client came. */
  readonly baseline: Weight
  weigh(): Promise<Weight>
  publish(channel: string, data: unknown): Promise<void>
  /** Lets the slowPublish hook's publishes through. */
  release(): Promise<void>
  close(): Promise<void>
}

export async function startMemoryServer(setup: MemorySetup): Promise<MemoryServer> {
  const child: ChildProcess = fork(SERVER_SCRIPT, [JSON.stringify(setup)], {
    execArgv: ['--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  let nextId = 0
  const waiting = new Map<number, (message: Record<string, unknown>) => void>()
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', (code) => reject(new Error(`memory server exited with ${code}`)))
    child.on('message', (message: Record<string, unknown>) => {
      if (message.type === 'ready') resolve(message)
      else waiting.get(message.id as number)?.(message)
    })
  })
  const call = (message: Record<string, unknown>): Promise<Record<string, unknown>> =>
    new Promise((resolve) => {
      const id = nextId++
      waiting.set(id, (answer) => {
        waiting.delete(id)
        resolve(answer)
      })
      child.send({ ...message, id })
    })
  const first = await ready
  return {
    port: first.port as number,
    baseline: first as unknown as Weight,
    weigh: async () => (await call({ type: 'weigh' })) as unknown as Weight,
    publish: async (channel, data) => void (await call({ type: 'publish', channel, data })),
    release: async () => void (await call({ type: 'release' })),
    close: async () => {
      if (child.exitCode !== null) return
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
      child.send({ type: 'exit' })
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000)
      await exited
      clearTimeout(timer)
    },
  }
}

/** One masked client text frame (RFC 6455 5.2, 5.3). */
export function maskedTextFrame(text: string): Buffer {
  const payload = Buffer.from(text, 'utf8')
  const length = payload.length
  const header = length < 126 ? 2 : length < 65536 ? 4 : 10
  const frame = Buffer.alloc(header + 4 + length)
  frame[0] = 0x81
  if (length < 126) frame[1] = 0x80 | length
  else if (length < 65536) {
    frame[1] = 0x80 | 126
    frame.writeUInt16BE(length, 2)
  } else {
    frame[1] = 0x80 | 127
    frame.writeUInt32BE(0, 2)
    frame.writeUInt32BE(length, 6)
  }
  const mask = randomBytes(4)
  mask.copy(frame, header)
  for (let i = 0; i < length; i++) frame[header + 4 + i] = (payload[i] as number) ^ (mask[i & 3] as number)
  return frame
}

/**
 * Opens `ws://127.0.0.1:<port><path>` on a raw socket, waits for the 101, writes `frames`
 * (each a client frame as JSON) and then stops reading for good: whatever the server sends
 * piles up in the kernel and then in the server.
 */
export async function openNonReadingWebSocket(port: number, path: string, frames: readonly object[]): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1')
  socket.on('error', () => {})
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  socket.write(
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n` +
      'Sec-WebSocket-Protocol: pushline.v1\r\n\r\n',
  )
  await new Promise<void>((resolve, reject) => {
    let head = ''
    const onData = (chunk: Buffer): void => {
      head += chunk.toString('latin1')
      if (!head.includes('\r\n\r\n')) return
      socket.off('data', onData)
      socket.pause()
      if (head.startsWith('HTTP/1.1 101')) resolve()
      else reject(new Error(`upgrade refused: ${head.split('\r\n')[0]}`))
    }
    socket.on('data', onData)
  })
  socket.write(Buffer.concat(frames.map((frame) => maskedTextFrame(JSON.stringify(frame)))))
  return socket
}

/** Sends `GET <path>` on a raw socket and never reads the answer. */
export async function openNonReadingRequest(port: number, path: string): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1')
  socket.on('error', () => {})
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  socket.pause()
  socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAccept: text/event-stream\r\n\r\n`)
  return socket
}
