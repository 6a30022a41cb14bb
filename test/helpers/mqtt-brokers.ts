import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import http from 'node:http'
import net, { type AddressInfo } from 'node:net'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { requireBinary } from './system-binary.js'
import { promisify } from 'node:util'
import { Aedes, type AuthenticateError } from 'aedes'
import { WebSocketServer, createWebSocketStream } from 'ws'
import { accepting, freePort } from './loopback-port.js'

const execFileAsync = promisify(execFile)

/** A broker the tests start, with its MQTT-over-TCP and MQTT-over-WebSocket URLs. */
export interface TestBroker {
  readonly url: string
  readonly wsUrl: string
  stop(): Promise<void>
}



export interface AedesOptions {
  /** Accept only this username and password. */
  credentials?: { username: string; password: string }
}

/** aedes in process, on loopback TCP and WebSocket ports. */
export async function startAedes(options: AedesOptions = {}): Promise<TestBroker & { broker: Aedes }> {
  const broker = await Aedes.createBroker()
  if (options.credentials) {
    const { username, password } = options.credentials
    broker.authenticate = (_client, user, pass, done) => {
      if (user === username && pass?.toString() === password) return done(null, true)
      const error = new Error('bad credentials') as AuthenticateError
      error.returnCode = 4
      done(error, false)
    }
  }
  const tcp = net.createServer(broker.handle)
  const httpServer = http.createServer()
  const wss = new WebSocketServer({ server: httpServer })
  wss.on('connection', (socket, req) => broker.handle(createWebSocketStream(socket), req))
  await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve))
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve))
  const tcpPort = (tcp.address() as AddressInfo).port
  const wsPort = (httpServer.address() as AddressInfo).port
  return {
    broker,
    url: `mqtt://127.0.0.1:${tcpPort}`,
    wsUrl: `ws://127.0.0.1:${wsPort}`,
    async stop() {
      for (const client of wss.clients) client.terminate()
      await new Promise<void>((resolve) => broker.close(() => resolve()))
      await new Promise<void>((resolve) => tcp.close(() => resolve()))
      httpServer.closeAllConnections()
      await new Promise<void>((resolve) => httpServer.close(() => resolve()))
    },
  }
}

export interface Mosquitto extends TestBroker {
  /** Stops the broker and starts it again on the same ports (no persistence: sessions are lost). */
  restart(): Promise<void>
  /** Stops the broker (by its pid); `start()` brings it back on the same ports. */
  kill(): Promise<void>
  start(): Promise<void>
  log(): Promise<string>
}

export interface MosquittoOptions {
  /** Accept only this user (a password file is written by mosquitto_passwd). */
  credentials?: { username: string; password: string }
}

/** Debian's mosquitto with a config file of its own, on free loopback ports; stopped by its pid. */
export async function startMosquitto(binary: string, options: MosquittoOptions = {}): Promise<Mosquitto> {
  const dir = await mkdtemp(join(tmpdir(), 'pushline-mosquitto-'))
  const port = await freePort()
  const wsPort = await freePort()
  let auth = ['allow_anonymous true']
  if (options.credentials) {
    const file = join(dir, 'passwords')
    await execFileAsync(requireBinary('mosquitto_passwd'), [
      '-c',
      '-b',
      file,
      options.credentials.username,
      options.credentials.password,
    ])
    auth = [`password_file ${file}`, 'allow_anonymous false']
  }
  const conf = [
    // Run as whoever started it: as root, mosquitto would switch to its own user, which cannot
    // read this test's private directory.
    `user ${userInfo().username}`,
    'persistence false',
    `log_dest file ${join(dir, 'mosquitto.log')}`,
    'log_type error',
    'log_type warning',
    'log_type notice',
    `listener ${port} 127.0.0.1`,
    'socket_domain ipv4',
    'set_tcp_nodelay true',
    ...auth,
    `listener ${wsPort} 127.0.0.1`,
    'socket_domain ipv4',
    'protocol websockets',
    ...auth,
    '',
  ].join('\n')
  // per_listener_settings lets each listener carry its own auth lines.
  await writeFile(join(dir, 'mosquitto.conf'), `per_listener_settings true\n${conf}`)
  let child: ChildProcess | undefined
  let exited = true

  const start = async (): Promise<void> => {
    const started = Date.now()
    const proc = spawn(binary, ['-c', join(dir, 'mosquitto.conf')], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    proc.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    child = proc
    exited = false
    proc.once('exit', () => {
      if (child === proc) exited = true
    })
    // A port just released by the previous broker may take a moment to be free again.
    while (!exited && !((await accepting(port)) && (await accepting(wsPort))) && Date.now() - started < 10_000) {
      await new Promise((resolve) => setTimeout(resolve, 25))
    }
    if (exited || !(await accepting(port))) {
      proc.kill('SIGKILL')
      const log = await readFile(join(dir, 'mosquitto.log'), 'utf8').catch(() => '')
      throw new Error(`mosquitto did not start: ${stderr} ${log}`)
    }
  }
  const kill = async (): Promise<void> => {
    const proc = child
    if (!proc || exited) return
    const gone = new Promise((resolve) => proc.once('exit', resolve))
    proc.kill('SIGTERM')
    await Promise.race([gone, new Promise((resolve) => setTimeout(resolve, 3000))])
    if (!exited) {
      proc.kill('SIGKILL')
      await gone
    }
  }
  await start()
  return {
    url: `mqtt://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${wsPort}`,
    start,
    kill,
    async restart() {
      await kill()
      await start()
    },
    log: () => readFile(join(dir, 'mosquitto.log'), 'utf8').catch(() => ''),
    async stop() {
      await kill()
      await rm(dir, { recursive: true, force: true })
    },
  }
}
