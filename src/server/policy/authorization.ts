import type { ErrorCode } from '../../protocol/frames.js'
import { isChannelName } from '../../protocol/position.js'
import type { AccessAction, AuthorizeHook, Identity, Logger, PublishTransport } from '../options.js'
import { isPushError } from '../../errors.js'

/** A refusal, as the error frame that answers it; undefined allows. */
export type AccessRefusal = { code: Extract<ErrorCode, 'SUBSCRIBE_REJECTED' | 'PUBLISH_REJECTED' | 'INTERNAL'>; message: string }

export interface AccessPolicyOptions {
  authorize: AuthorizeHook<Identity> | undefined
  /** Prefix of user channels (the `userChannels` option). */
  userChannels: string | undefined
  logger: Logger
}

const REFUSAL_CODE = { subscribe: 'SUBSCRIBE_REJECTED', publish: 'PUBLISH_REJECTED' } as const

/**
 * Who may subscribe to and publish on which channel: the built-in user-channel rule, then the
 * app's `authorize`. Never throws.
 */
export class AccessPolicy {
  readonly #authorize: AuthorizeHook<Identity> | undefined
  readonly #userChannels: string | undefined
  readonly #logger: Logger

  constructor(options: AccessPolicyOptions) {
    this.#authorize = options.authorize
    this.#userChannels = options.userChannels
    this.#logger = options.logger
  }

  /** False when every channel is open to everybody: callers then skip the check and its promise. */
  get restricts(): boolean {
    return this.#authorize !== undefined || this.#userChannels !== undefined
  }

  /** The user channel of `userId`; throws when there are none or the name would be invalid. */
  userChannel(userId: string): string {
    if (this.#userChannels === undefined) throw new RangeError('publishToUser needs the userChannels option')
    const channel = `${this.#userChannels}${userId}`
    if (!isChannelName(channel)) throw new RangeError(`user channel of ${JSON.stringify(userId)} is no valid channel name`)
    return channel
  }

  /** Resolves with undefined when `identity` may `action` on `channel`, else with the refusal. */
  async check(
    identity: Identity | undefined,
    channel: string,
    action: AccessAction,
    transport: PublishTransport,
  ): Promise<AccessRefusal | undefined> {
    const code = REFUSAL_CODE[action]
    const prefix = this.#userChannels
    if (prefix !== undefined && channel.startsWith(prefix)) {
      // A user channel is its user's inbox: only that user reads it, and only the server writes to it.
      if (action === 'publish') return { code, message: 'user channels are published to by the server only' }
      if (identity?.userId !== channel.slice(prefix.length)) return { code, message: 'not your user channel' }
    }
    if (!this.#authorize) return undefined
    try {
      if ((await this.#authorize({ identity, channel, action, transport })) === true) return undefined
      return { code, message: `${action} not allowed` }
    } catch (error) {
      if (isPushError(error) && error.code === code) return { code, message: error.message }
      this.#logger.error('pushline: authorize threw', error)
      return { code: 'INTERNAL', message: `${action} failed` }
    }
  }
}
