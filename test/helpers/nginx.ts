import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { requireBinary } from './system-binary.js'

/**
 * How the proxy in front of the server behaves:
 * - `websocket`: a correct WebSocket proxy (Upgrade/Connection forwarded, no buffering);
 * - `plain`: a bare proxy_pass: no Upgrade headers (the WebSocket handshake cannot pass), default
 *   buffering that still honours the upstream's X-Accel-Buffering;
 * - `buffering`: no Upgrade, responses buffered whole, X-Accel-Buffering ignored, gzip on event
 *   streams and HTML: a stream sits in the proxy's buffers with no error and nothing delivered.
 */
export type NginxMode = 'websocket' | 'plain' | 'buffering'

export interface Nginx {
  readonly port: number
  readonly url: string
  stop(): Promise<void>
  errorLog(): Promise<string>
}

const modeDirectives: Record<NginxMode, string> = {
  websocket: `
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_buffering off;`,
  plain: ``,
  buffering: `
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering on;
      proxy_buffers 8 64k;
      proxy_busy_buffers_size 128k;
      proxy_ignore_headers X-Accel-Buffering;
      gzip on;
      gzip_proxied any;
      gzip_min_length 0;
      gzip_types text/event-stream text/html application/json;`,
}

async function freePort(): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

async function accepting(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

/**
 * Starts Debian's nginx with its own prefix, config and pidfile, proxying `/push/` to `upstreamPort`,
 * or round-robin (no stickiness) over several. Its tests run inside `describeWithBinary('nginx', ...)`.
 */
export async function startNginx(upstreamPort: number | readonly number[], mode: NginxMode): Promise<Nginx> {
  const upstreams = typeof upstreamPort === 'number' ? [upstreamPort] : upstreamPort
  const nginxPath = requireBinary('nginx')
  const prefix = await mkdtemp(join(tmpdir(), 'pushline-nginx-'))
  for (let attempt = 0; ; attempt++) {
    const port = await freePort()
    const conf = `
worker_processes 1;
daemon off;
master_process off;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${prefix}/client_body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  upstream pushline { ${upstreams.map((port) => `server 127.0.0.1:${port} max_fails=1 fail_timeout=2s;`).join(' ')} }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://pushline;
      proxy_read_timeout 120s;
      ${modeDirectives[mode]}
    }
  }
}
`
    await writeFile(join(prefix, 'nginx.conf'), conf)
    const child: ChildProcess = spawn(nginxPath, ['-p', prefix, '-c', join(prefix, 'nginx.conf')], {
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    let exited = false
    child.once('exit', () => {
      exited = true
    })
    const started = Date.now()
    while (!exited && !(await accepting(port)) && Date.now() - started < 5000) {
      await new Promise((resolve) => setTimeout(resolve, 25))
    }
    if (exited || !(await accepting(port))) {
      child.kill('SIGKILL')
      if (attempt < 3) continue
      const log = await readFile(join(prefix, 'error.log'), 'utf8').catch(() => '')
      throw new Error(`nginx did not start: ${log}`)
    }
    return {
      port,
      url: `http://127.0.0.1:${port}`,
      errorLog: () => readFile(join(prefix, 'error.log'), 'utf8').catch(() => ''),
      async stop() {
        if (!exited) {
          const gone = new Promise((resolve) => child.once('exit', resolve))
          child.kill('SIGTERM')
          await Promise.race([gone, new Promise((resolve) => setTimeout(resolve, 3000))])
          if (!exited) child.kill('SIGKILL')
        }
        await rm(prefix, { recursive: true, force: true })
      },
    }
  }
}
