import { defineConfig } from 'tsup'

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    server: 'src/server/index.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'es2022',
  platform: 'neutral',
  // Node-only peers stay external; browsers use their globals instead.
  external: ['ws', 'isomorphic-ws', 'eventsource', 'zod', 'nanoevents', /^node:/],
  treeshake: true,
  splitting: true,
})
