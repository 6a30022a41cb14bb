import { defaultTransports, resolveTransports } from '../transports/registry.js'
import { PushClient as CorePushClient } from './client.js'
import type { PushClientOptions } from './options.js'

/**
 * The `PushClient` of `pushline`: the one of `pushline/core`, plus transports by name and a default
 * list (every transport). It bundles every transport; an app that wants only some imports
 * `pushline/core` and lists factories.
 */
export class PushClient extends CorePushClient {
  /** `new PushClient({ url })` tries every transport; `transports` restricts or reorders them. */
  constructor(options: PushClientOptions) {
    super({ ...options, transports: resolveTransports(options.transports ?? defaultTransports()) })
  }
}
