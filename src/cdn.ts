/**
 * Entry of the script-tag bundle `dist/pushline.iife.min.js` (see rollup.config.ts): its exports
 * become the properties of the global `Pushline`, e.g. `new Pushline.PushClient({ url })`.
 *
 * It re-exports the whole public client surface (PushClient, PushError, the transport factories),
 * so the global always matches `import ... from 'pushline'`; the types vanish in the build.
 */
export * from './index.js'
