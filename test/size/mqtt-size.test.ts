/**
 * mqtt.js (about 105 KB gzip) must never enter a bundle that does not use the mqtt() transport,
 * and an app that does use it loads mqtt.js as a chunk of its own, on first connect. Bundled for
 * the browser with rollup.config.ts's plugins, as size.test.ts does. (Bundled whole, mqtt.js was
 * 97 KB gzip in its own chunk.)
 */
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { constants, gzipSync } from 'node:zlib'
import { rollup, type OutputChunk, type Plugin } from 'rollup'
import { describe, expect, it } from 'vitest'
import { browserPlugins, onBrowserLog } from '../../rollup.config.js'

/** The mqtt() app's entry chunk beyond a websocket-only client of pushline/core, gzipped. */
const MQTT_TRANSPORT_BUDGET = 1200

const root = fileURLToPath(new URL('../../', import.meta.url))
const rel = (id: string) => (id.startsWith('\0') ? id : relative(root, id))
const core = JSON.stringify(join(root, 'src/core.ts'))
const index = JSON.stringify(join(root, 'src/index.ts'))
const mqttEntry = JSON.stringify(join(root, 'src/mqtt/index.ts'))

const apps = {
  pushline: `import { PushClient } from ${index}
new PushClient({ url: '/push', share: true }).connect()`,
  websocketOnly: `import { PushClient, websocket } from ${core}
new PushClient({ url: '/push', transports: [websocket()] }).connect()`,
  mqttOnly: `import { PushClient } from ${core}
import { mqtt } from ${mqttEntry}
new PushClient({ url: 'wss://broker.example/mqtt', transports: [mqtt()] }).connect()`,
}

interface Bundle {
  entryGzip: number
  entryCode: string
  /** Source files in the entry chunk. */
  entryModules: string[]
  /** Every module in the graph, lazy chunks included. */
  allModules: string[]
}

/** With `external`, those packages stay imports (mqtt.js is large: minifying it costs the test run half a minute). */
async function bundle(code: string, external: string[] = []): Promise<Bundle> {
  const id = '\0size-app'
  const entry: Plugin = { name: 'entry', resolveId: (source) => (source === id ? id : null), load: (loaded) => (loaded === id ? code : null) }
  const build = await rollup({ input: id, external, plugins: [entry, ...browserPlugins({ module: true })], onLog: onBrowserLog })
  try {
    const { output } = await build.generate({ format: 'es', sourcemap: false })
    const chunks = output.filter((item): item is OutputChunk => item.type === 'chunk')
    const gzip = (chunk: OutputChunk) => gzipSync(chunk.code, { level: constants.Z_BEST_COMPRESSION }).length
    const modulesOf = (chunk: OutputChunk) =>
      Object.entries(chunk.modules)
        .filter(([, info]) => info.renderedLength > 0)
        .map(([module]) => rel(module))
    const entryChunk = chunks.find((chunk) => chunk.isEntry)
    if (!entryChunk) throw new Error('no entry chunk')
    return {
      entryGzip: gzip(entryChunk),
      entryCode: entryChunk.code,
      entryModules: modulesOf(entryChunk),
      allModules: build.cache?.modules.map((module) => rel(module.id)) ?? [],
    }
  } finally {
    await build.close()
  }
}

const isMqttCode = (module: string) => module.startsWith('src/mqtt') || /node_modules\/(mqtt|mqtt-packet)\//.test(module)

describe('mqtt() bundle isolation', () => {
  it('pushline and a websocket-only pushline/core client contain no MQTT code at all: their sizes cannot change', async () => {
    for (const app of [apps.pushline, apps.websocketOnly]) {
      const result = await bundle(app)
      expect(result.allModules, 'the module list is the whole graph').toContain('src/client/client.ts')
      expect(result.allModules.filter(isMqttCode)).toEqual([])
    }
  }, 60_000)

  it(`an mqtt() client imports mqtt.js only dynamically, on connect; its entry adds at most ${MQTT_TRANSPORT_BUDGET} B to a websocket-only client`, async () => {
    const [mqttOnly, websocketOnly] = await Promise.all([bundle(apps.mqttOnly, ['mqtt']), bundle(apps.websocketOnly)])
    expect(mqttOnly.entryModules).toContain('src/mqtt/transport.ts')
    // mqtt stays an import: only a dynamic one, no static `import ... from 'mqtt'`.
    expect(mqttOnly.entryCode).toMatch(/import\(\s*["']mqtt["']\s*\)/)
    expect(mqttOnly.entryCode).not.toMatch(/from\s*["']mqtt["']/)
    const added = mqttOnly.entryGzip - websocketOnly.entryGzip
    console.log(`mqtt() client entry ${mqttOnly.entryGzip} B gzip (websocket-only ${websocketOnly.entryGzip} B; +${added} B); mqtt.js loaded on connect`)
    expect(added).toBeLessThanOrEqual(MQTT_TRANSPORT_BUDGET)
  }, 60_000)
})
