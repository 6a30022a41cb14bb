/**
 * What the client uses of `window` (or a worker's `self`) to follow the browser's lifecycle:
 * `online`/`offline`, `visibilitychange` (fired at the document, it bubbles to the window),
 * `pagehide`/`pageshow` (the back-forward cache), and `navigator.onLine`.
 */
export interface LifecycleTarget {
  addEventListener(type: string, listener: (event: any) => void): void
  removeEventListener(type: string, listener: (event: any) => void): void
  readonly navigator?: { readonly onLine?: boolean } | undefined
}

/** The events the client listens for while connected, one listener for all. */
export const LIFECYCLE_EVENTS = ['online', 'offline', 'visibilitychange', 'pagehide', 'pageshow'] as const

/** The global object where it is an event target (browsers, workers), else none (Node). */
export const defaultLifecycle = (): LifecycleTarget | undefined =>
  'addEventListener' in globalThis ? (globalThis as LifecycleTarget) : undefined

/** Adds (`add`) or removes `listener` for every lifecycle event on `target`. */
export const listenLifecycle = (target: LifecycleTarget | null | undefined, listener: (event: { type: string }) => void, add?: boolean): void => {
  for (const type of LIFECYCLE_EVENTS) target?.[add ? 'addEventListener' : 'removeEventListener'](type, listener)
}
