/**
 * Browser builds. `npm run build` runs tsup (the npm package: ESM, CJS and types) and then this file,
 * which makes the script-tag bundle `dist/pushline.iife.min.js` (global `Pushline`) and its source map.
 *
 * test/size/size.test.ts bundles with the same `browserPlugins()`, so the size budgets measure the
 * code we ship, not a look-alike.
 *
 * Run with `rollup -c rollup.config.ts --configPlugin esbuild`: Node 20 cannot load TypeScript itself.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { nodeResolve } from '@rollup/plugin-node-resolve'
import terserModule from '@rollup/plugin-terser'
import type { LogHandlerWithDefault, OutputOptions, Plugin, RollupOptions } from 'rollup'
import esbuild from 'rollup-plugin-esbuild'
import { MANGLED_PROPS, mangleCache } from './tsup.config.js'

interface PackageJson {
  version: string
  license: string
  browser?: Record<string, string | false>
}

// The plugin's types are written as CommonJS (its package.json has no `"type": "module"`), so under
// NodeNext TypeScript sees the module object; at run time the `import` condition loads the ES build,
// whose default export is the plugin itself.
const terser = terserModule as unknown as typeof terserModule.default

const pkg = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8')) as PackageJson

/** Same language level as the tsup build: every browser with `#private` fields and `??=`. */
const TARGET = 'es2022'

const EMPTY_PREFIX = '\0pushline-browser-false:'

/**
 * Resolves the modules that package.json's `browser` field maps to `false` (the Node fallbacks
 * `isomorphic-ws` and `eventsource`) to an empty module. node-resolve does this too, but its empty
 * module has only a default export, so `import { EventSource } from 'eventsource'` would fail the
 * build; here every named import is `undefined` and the client falls back to the browser's globals.
 */
export function browserFalse(browserField: Record<string, string | false> = pkg.browser ?? {}): Plugin {
  const empty = new Set(
    Object.entries(browserField)
      .filter(([, target]) => target === false)
      .map(([name]) => name),
  )
  return {
    name: 'pushline:browser-false',
    resolveId(source) {
      return empty.has(source) ? EMPTY_PREFIX + source : null
    },
    load(id) {
      return id.startsWith(EMPTY_PREFIX) ? { code: 'export default {}', syntheticNamedExports: true } : null
    },
  }
}

/**
 * The plugins of every browser build: TypeScript via esbuild, package resolution with the `browser`
 * condition (nanoevents is bundled), and terser. `module` tells terser whether the output is an ES
 * module (top-level names may be mangled) or a script.
 */
export function browserPlugins({ module }: { module: boolean }): Plugin[] {
  return [
    browserFalse(),
    nodeResolve({ browser: true, preferBuiltins: false, extensions: ['.ts', '.mjs', '.js', '.json'] }),
    esbuild({
      target: TARGET,
      tsconfig: fileURLToPath(new URL('./tsconfig.json', import.meta.url)),
      sourceMap: true,
      // `_` properties are renamed as in the npm build (tsup.config.ts explains the convention):
      // this plugin transforms one file at a time, and the shared table keeps the files agreeing.
      mangleProps: MANGLED_PROPS,
      mangleCache: { ...mangleCache },
    }),
    terser({
      ecma: 2020,
      module,
      // unsafe_arrows: anonymous `function` expressions (mostly what inlining leaves) become arrows;
      // unsafe only for code that calls `new` on one or reads its `prototype`, which ours never does
      // (e2e runs this bundle in Chromium).
      compress: { passes: 2, unsafe_arrows: true },
      // Keeps only the `/*! ... */` banner.
      format: { comments: /^!/ },
    }),
  ]
}

/** Warnings that mean the browser bundle is broken rather than untidy. */
const FATAL_WARNINGS = new Set([
  'UNRESOLVED_IMPORT', // a Node-only or missing module would be left as a bare import in a script
  'MISSING_EXPORT',
  'MISSING_GLOBAL_NAME',
  'MIXED_EXPORTS',
  'EVAL', // a page with a strict Content-Security-Policy could not load the script
])

/** Turns the warnings of `FATAL_WARNINGS` into build errors. */
export const onBrowserLog: LogHandlerWithDefault = (level, log, handler) => {
  if (level === 'warn' && log.code !== undefined && FATAL_WARNINGS.has(log.code)) handler('error', log)
  else handler(level, log)
}

/** Absolute, so that the size test bundles the same entry whatever its working directory. */
export const cdnInput = fileURLToPath(new URL('./src/cdn.ts', import.meta.url))

export const cdnOutput: OutputOptions = {
  file: 'dist/pushline.iife.min.js',
  format: 'iife',
  name: 'Pushline',
  sourcemap: true,
  banner: `/*! pushline v${pkg.version} | ${pkg.license} */`,
  // A script has no chunks to load later: `share: true`'s module is inlined.
  inlineDynamicImports: true,
  // Modern syntax in rollup's own glue; no Symbol.toStringTag on the global.
  generatedCode: { arrowFunctions: true, constBindings: true, objectShorthand: true },
}

const config: RollupOptions[] = [
  {
    input: cdnInput,
    output: cdnOutput,
    plugins: browserPlugins({ module: false }),
    onLog: onBrowserLog,
  },
]

export default config
