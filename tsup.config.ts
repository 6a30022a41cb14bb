import { buildSync } from 'esbuild'
import { defineConfig } from 'tsup'

const entry = {
  index: 'src/index.ts',
  core: 'src/core.ts',
  server: 'src/server/index.ts',
  react: 'src/react/index.ts',
  share: 'src/client/share.ts',
  redis: 'src/server/brokers/redis/index.ts',
  mqtt: 'src/mqtt/index.ts',
  'mqtt-bridge': 'src/mqtt-bridge/index.ts',
  testing: 'src/testing/index.ts',
}

// Node-only peers stay external; browsers use their globals instead. React and msw are the app's own copies.
const external = ['@redis/client', 'ws', 'isomorphic-ws', 'eventsource', 'zod', 'nanoevents', 'react', 'mqtt', 'msw', /^msw\//, /^node:/]

/**
 * Property mangling, the convention: a property whose name starts with `_` (`_factory`,
 * `_epoch`, `_confirmed`) is internal to one build of pushline, and the build renames it to a
 * short name; every other property keeps its name. So source code names internal records in full
 * and the bundle pays nothing for it. Such a property must never be public (the `.d.ts` files,
 * which are not mangled, would name what the code no longer has), never be stored or sent (wire
 * frames, localStorage, messages between tabs: another release may read them), and never be
 * reached by a string (`obj['_x']` is not renamed).
 *
 * Consistency: every build (tsup's ESM and CJS builds with their shared chunks, rollup's
 * script-tag bundle, the size test's bundles) renames with the same table, `mangleCache`, computed
 * once here from all the sources. A name therefore means the same in every chunk and every entry,
 * and rollup's esbuild plugin, which transforms one file at a time, still agrees across files.
 */
export const MANGLED_PROPS = /^_/

const sources = Object.values(entry).concat('src/cdn.ts')

/** `_name` → short name, for every `_` property of the sources; esbuild picks names that clash with no other property. */
export const mangleCache: Record<string, string | false> = buildSync({
  entryPoints: sources,
  bundle: true,
  write: false,
  outdir: 'mangle-cache-pass',
  format: 'esm',
  platform: 'neutral',
  splitting: true,
  logLevel: 'silent',
  external: external.filter((name): name is string => typeof name === 'string').concat('node:*'),
  mangleProps: MANGLED_PROPS,
  // Given a table, esbuild returns it completed.
  mangleCache: {},
}).mangleCache as Record<string, string | false>

export default defineConfig({
  entry,
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'es2022',
  platform: 'neutral',
  external,
  treeshake: true,
  splitting: true,
  esbuildOptions(options) {
    options.mangleProps = MANGLED_PROPS
    // A copy: esbuild must find every name in it, never add one of its own.
    options.mangleCache = { ...mangleCache }
  },
})
