import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { requireBinary } from './system-binary.js'
import { accepting, freePort } from './loopback-port.js'

/**
 * How the proxy in front of the server behaves:
 * - `websocket`: a correct WebSocket proxy (Upgrade/Connection forwarded, no buffering);
 * - `plain`: a bare proxy_pass: no Upgrade headers (the WebSocket handshake cannot pass), default
 *   buffering that still honours the upstream's X-Accel-Buffering;
 * - `buffering`: no Upgrade, response buffering on with X-Accel-Buffering ignored; nginx still
 *   passes an event stream on as its buffers fill, and the server's 2 KiB SSE padding fills them;
 * - `buffering-gzip`: the same, and gzip on event streams, HTML and JSON: the compressor holds the
 *   stream, which sits in the proxy with no error and nothing delivered;
 * - `idle-cut`: a correct WebSocket proxy that cuts any link on which the upstream sent nothing for
 *   5 s (`proxy_read_timeout 5s`), as load balancers with a short idle timeout do.
 */
export type NginxMode = 'websocket' | 'plain' | 'buffering' | 'buffering-gzip' | 'idle-cut'

export interface Nginx {
  readonly port: number
  readonly url: string
  stop(): Promise<void>
  errorLog(): Promise<string>
}

const webSocketProxy = `
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_buffering off;`
const bufferingProxy = `
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering on;
      proxy_buffers 8 64k;
      proxy_busy_buffers_size 128k;
      proxy_ignore_headers X-Accel-Buffering;`

const modeDirectives: Record<NginxMode, string> = {
  websocket: webSocketProxy + `
      proxy_read_timeout 120s;`,
  plain: `
      proxy_read_timeout 120s;`,
  buffering: bufferingProxy + `
      proxy_read_timeout 120s;`,
  'idle-cut': webSocketProxy + `
      proxy_read_timeout 5s;`,
  'buffering-gzip': bufferingProxy + `
      proxy_read_timeout 120s;
      gzip on;
      gzip_proxied any;
      gzip_min_length 0;
      gzip_types text/event-stream text/html application/json;`,
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
      # What reverse proxies in front of an app do: the app sees the Host the browser used, so its
      # same-origin check (Origin against Host) holds behind the proxy.
      proxy_set_header Host $http_host;
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
