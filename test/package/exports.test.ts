/**
 * The built package as its users get it: every entry imported as ESM and as CJS by a separate Node
 * process (real Node resolution through package.json `exports`, not Vite's), both from this
 * checkout (self-reference) and from the packed tarball installed into a scratch project; then
 * publint and arethetypeswrong.
 *
 * It tests dist/, so it needs `npm run build` first (.ci/run builds before `npm test`).
 */
import { execFile } from 'node:child_process'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mangleCache } from '../../tsup.config.js'

const run = promisify(execFile)
const root = fileURLToPath(new URL('../../', import.meta.url))
const bin = (name: string) => join(root, 'node_modules', '.bin', name)

interface PackageJson {
  name: string
  exports: Record<string, unknown>
  dependencies?: Record<string, string>
  peerDependencies?: Record<string, string>
}

const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as PackageJson

/** Runtime exports each entry must have, by its subpath in package.json `exports`. */
const EXPECTED: Record<string, string[]> = {
  '.': ['PushClient', 'PushError', 'iframe', 'isPushError', 'longPolling', 'negotiate', 'shortPolling', 'sse', 'websocket'],
  './core': ['PushClient', 'PushError', 'iframe', 'isPushError', 'longPolling', 'negotiate', 'shortPolling', 'sse', 'websocket'],
  './server': ['createPushServer', 'MemoryBroker', 'PushError'],
  './redis': ['RedisBroker'],
  './react': ['PushProvider', 'usePush'],
  './share': ['tabShare'],
  './mqtt': ['mqtt', 'topicMatches'],
  './mqtt-bridge': ['mqttBridge'],
  './testing': ['createPushMock'],
}

const subpaths = Object.keys(pkg.exports).filter((subpath) => subpath !== './package.json')

/** Every entry of package.json `exports`, as an importer names it, with the exports it must have. */
const ENTRIES: Record<string, string[]> = Object.fromEntries(
  subpaths.map((subpath) => [subpath === '.' ? pkg.name : `${pkg.name}/${subpath.slice(2)}`, EXPECTED[subpath] ?? []]),
)

/** The files `exports` points at, and the script-tag bundle. */
const DIST_FILES = [
  ...new Set([...JSON.stringify(pkg.exports).matchAll(/"\.\/(dist\/[^"]+)"/g)].map((match) => match[1] as string)),
  'dist/pushline.iife.min.js',
  'dist/pushline.iife.min.js.map',
]

interface Loaded {
  /** Sorted export names, per specifier. */
  esm: Record<string, string[]>
  cjs: Record<string, string[]>
  /** `typeof` of each expected export, per specifier, ESM and CJS. */
  kinds: Record<string, Record<string, string>>
  /** PushError from each format, constructed, is an Error with its code. */
  errors: { esm: boolean; cjs: boolean }
}

/** Runs in a fresh Node process with `cwd` as the importing project. */
const LOADER = `
import { createRequire } from 'node:module'
import { join } from 'node:path'
const entries = JSON.parse(process.argv[1])
const require = createRequire(join(process.cwd(), 'loader.cjs'))
const out = { esm: {}, cjs: {}, kinds: {}, errors: {} }
for (const [specifier, names] of Object.entries(entries)) {
  const esm = await import(specifier)
  const cjs = require(specifier)
  out.esm[specifier] = Object.keys(esm).sort()
  out.cjs[specifier] = Object.keys(cjs).sort()
  out.kinds[specifier] = Object.fromEntries(names.flatMap((n) => [['esm:' + n, typeof esm[n]], ['cjs:' + n, typeof cjs[n]]]))
  if (specifier === 'pushline') {
    const check = (PushError) => { const e = new PushError('INTERNAL', 'x'); return e instanceof Error && e.code === 'INTERNAL' && e.name === 'PushError' }
    out.errors = { esm: check(esm.PushError), cjs: check(cjs.PushError) }
  }
}
console.log(JSON.stringify(out))
`

async function load(cwd: string): Promise<Loaded> {
  try {
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', LOADER, JSON.stringify(ENTRIES)], { cwd })
    return JSON.parse(stdout) as Loaded
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? String(error)
    throw new Error(`importing the built package from ${cwd} failed in Node ${process.version}:\n${stderr}`)
  }
}

function expectEntries(loaded: Loaded) {
  for (const [specifier, names] of Object.entries(ENTRIES)) {
    expect(loaded.esm[specifier], `ESM exports of ${specifier}`).toEqual(expect.arrayContaining(names))
    // The CJS build is the same module: same names, no `default` wrapper or missing re-export.
    expect(loaded.cjs[specifier], `CJS exports of ${specifier} match ESM`).toEqual(loaded.esm[specifier])
    for (const name of names) {
      expect(loaded.kinds[specifier]?.[`esm:${name}`], `${specifier} ESM ${name}`).toBe('function')
      expect(loaded.kinds[specifier]?.[`cjs:${name}`], `${specifier} CJS ${name}`).toBe('function')
    }
  }
  expect(loaded.errors).toEqual({ esm: true, cjs: true })
}

/** A failing CLI fails the test with its whole output. */
async function cli(command: string, args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await run(command, args, { cwd: root, env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' } })
    return stdout + stderr
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string }
    throw new Error(`${[command.split('/').pop(), ...args].join(' ')} exited with ${e.code}:\n${e.stdout ?? ''}${e.stderr ?? ''}`)
  }
}

describe('the built package', () => {
  beforeAll(() => {
    const missing = DIST_FILES.filter((file) => !existsSync(join(root, file)))
    if (missing.length > 0) {
      throw new Error(`${missing.join(', ')} missing: run \`npm run build\` before \`npm test\` (.ci/run does).`)
    }
  })

  it('knows what every entry of package.json exports must export', () => {
    expect(
      subpaths.filter((subpath) => !EXPECTED[subpath]),
      'entries without expected exports: add them to EXPECTED in this file',
    ).toEqual([])
  })

  it('imports every entry as ESM and as CJS from this checkout', async () => {
    expectEntries(await load(root))
  })

  it('loads pushline/share for share: true from the ESM and the CJS build', async () => {
    // A transport that only says it was opened: the client opens it once the share module is in.
    const client = (load: string) => `${load}
const transport = { name: 'websocket', create: () => ({ name: 'websocket', open: () => { console.log('opened'); process.exit(0) }, send() {}, close() {} }) }
new PushClient({ url: 'http://127.0.0.1:1/push', transports: [transport], share: true, lifecycle: null }).connect()
setTimeout(() => { console.log('not opened'); process.exit(1) }, 5000)`
    const esm = await run(process.execPath, ['--input-type=module', '-e', client(`import { PushClient } from 'pushline'`)], { cwd: root })
    const cjs = await run(process.execPath, ['--input-type=commonjs', '-e', client(`const { PushClient } = require('pushline')`)], { cwd: root })
    expect([esm.stdout.trim(), cjs.stdout.trim()]).toEqual(['opened', 'opened'])
  })

  it('renames every internal (`_`) property in every built file, ESM and CJS, entries and chunks', () => {
    const files = readdirSync(join(root, 'dist')).filter((file) => /\.(c?js)$/.test(file))
    const internal = Object.keys(mangleCache)
    expect(internal, 'the mangle table names the client records').toEqual(expect.arrayContaining(['_factory', '_epoch']))
    const left = files.flatMap((file) => {
      const code = readFileSync(join(root, 'dist', file), 'utf8')
      // As a property: `.name`, or a key `name:` / method `name(` in an object literal or pattern.
      return internal.filter((name) => new RegExp(`\\.${name}\\b|[{,]\\s*${name}\\s*[:(]`).test(code)).map((name) => `${file}: ${name}`)
    })
    expect(left).toEqual([])
  })

  it('negotiates across the built chunks (the client, and the negotiation in a chunk of its own) from ESM and CJS', async () => {
    // The first transport fails, the second opens: the client core and the negotiation read each
    // other's internal records, so their renamed properties must agree across chunks.
    const client = (load: string) => `${load}
const hello = { type: 'hello', v: 1, session: 's', heartbeatMs: 60000, maxFrameBytes: 1000, transports: ['websocket', 'sse'] }
const failing = { name: 'websocket', negotiate, create: (context) => ({ name: 'websocket', open: () => context.onClose(new Error('refused')), send() {}, close() {} }) }
const working = { name: 'sse', negotiate, create: (context) => ({ name: 'sse', open: () => context.onFrame(hello), send() {}, close() {} }) }
const client = new PushClient({ url: 'http://127.0.0.1:1/push', transports: [failing, working], lifecycle: null, storage: { getItem: () => null, setItem() {} } })
const fallbacks = []
client.on('fallback', (event) => fallbacks.push(event))
client.on('state', (state) => {
  if (state !== 'open') return
  console.log(JSON.stringify({ transport: client.transport, fallbacks }))
  client.close()
})
client.connect()`
    const esm = await run(process.execPath, ['--input-type=module', '-e', client(`import { PushClient, negotiate } from 'pushline/core'`)], { cwd: root })
    const cjs = await run(process.execPath, ['--input-type=commonjs', '-e', client(`const { PushClient, negotiate } = require('pushline/core')`)], { cwd: root })
    const expected = { transport: 'sse', fallbacks: [{ from: 'websocket', to: 'sse', reason: 'handshake-failed' }] }
    expect([JSON.parse(esm.stdout), JSON.parse(cjs.stdout)]).toEqual([expected, expected])
  })

  it.each(['pushline/server', 'pushline/redis'])('keeps %s out of browser bundles', async (specifier) => {
    // `"browser": null` on ./server and ./redis: a bundler resolving for the browser must refuse them.
    const script = `import('${specifier}').then(() => console.log('resolved'), (e) => console.log(e.code))`
    const { stdout } = await run(process.execPath, ['--conditions=browser', '--input-type=module', '-e', script], { cwd: root })
    expect(stdout.trim()).toBe('ERR_PACKAGE_PATH_NOT_EXPORTED')
  })

  it('never loads a Redis client for pushline/server: no file it imports names @redis/client', () => {
    for (const entry of ['dist/server.js', 'dist/server.cjs']) {
      const seen = new Set<string>()
      const visit = (file: string): void => {
        if (seen.has(file)) return
        seen.add(file)
        const source = readFileSync(join(root, file), 'utf8')
        expect(source, `${file} (reached from ${entry})`).not.toMatch(/['"]@redis\/client['"]|['"]redis['"]/)
        for (const [, relative] of source.matchAll(/(?:from |require\(|import\()['"](\.\/[^'"]+)['"]/g)) {
          visit(join('dist', relative as string))
        }
      }
      visit(entry)
      expect(seen.size, `${entry} and its chunks`).toBeGreaterThan(1)
    }
    // The check can see it where it is.
    expect(readFileSync(join(root, 'dist/redis.js'), 'utf8')).toMatch(/from ['"]@redis\/client['"]/)
  })

  it('keeps msw in pushline/testing: no other built file imports it', () => {
    const files = readdirSync(join(root, 'dist')).filter((file) => /\.(c?js)$/.test(file))
    const importsMsw = (file: string) => /(?:from |require\(|import\()['"]msw(?:\/[^'"]*)?['"]/.test(readFileSync(join(root, 'dist', file), 'utf8'))
    expect(files.filter(importsMsw)).toEqual(['testing.cjs', 'testing.js'])
  })

  describe('packed', () => {
    let scratch: string
    afterAll(async () => {
      if (scratch) await rm(scratch, { recursive: true, force: true })
    })

    it('installs from the tarball and imports every entry as ESM and as CJS', async () => {
      // What `npm install pushline` gets: only the files listed in package.json `files`.
      scratch = await mkdtemp(join(tmpdir(), 'pushline-pack-'))
      const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', scratch], { cwd: root })
      const [packed] = JSON.parse(stdout) as { filename: string }[]
      if (!packed) throw new Error('npm pack reported no tarball')
      const target = join(scratch, 'node_modules', 'pushline')
      await mkdir(target, { recursive: true })
      await run('tar', ['-xzf', join(scratch, packed.filename), '-C', target, '--strip-components=1'])
      // The dependencies (and the peers an app would install) come from this checkout, linked
      // rather than installed: no network.
      for (const dep of Object.keys({ ...pkg.dependencies, ...pkg.peerDependencies })) {
        const link = join(scratch, 'node_modules', dep)
        await mkdir(join(link, '..'), { recursive: true })
        await symlink(join(root, 'node_modules', dep), link, 'dir')
      }
      expectEntries(await load(scratch))
    })
  })

  it('passes publint', async () => {
    // --strict: warnings (e.g. a types condition in the wrong place) fail too.
    await cli(bin('publint'), ['--strict'])
  })

  it('passes arethetypeswrong', async () => {
    // --profile node16: Node 20+ only (package.json engines), so node10 resolution, which has no
    // `exports` and cannot see `pushline/server` at all, is not a target. ESM and CJS under node16
    // and bundler resolution are all checked.
    await cli(bin('attw'), ['--pack', '.', '--profile', 'node16', '--format', 'table-flipped'])
    // It packs and type-checks every entry (nine with pushline/testing): 21 s measured at load 13
    // on the shared 2-core machine, over the default 20 s.
  }, 90_000)
})
