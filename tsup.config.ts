import { defineConfig } from 'tsup'

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    core: 'src/core.ts',
    server: 'src/server/index.ts',
    react: 'src/react/index.ts',
    share: 'src/client/share.ts',
    mqtt: 'src/mqtt/index.ts',
    'mqtt-bridge': 'src/mqtt-bridge/index.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'es2022',
  platform: 'neutral',
  // Node-only peers stay external; browsers use their globals instead. React is the app's own copy.
  external: ['ws', 'isomorphic-ws', 'eventsource', 'zod', 'nanoevents', 'react', 'mqtt', /^node:/],
  treeshake: true,
  splitting: true,
})
