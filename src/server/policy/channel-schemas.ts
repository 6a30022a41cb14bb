import { PushError } from '../../errors.js'
import type { ChannelDefinition } from '../../protocol/channel-definition.js'
import { isChannelName } from '../../protocol/position.js'
import { describeIssues, validateWith, type StandardSchemaV1 } from '../../protocol/standard-schema.js'

/**
 * The schemas of the server's `channels` option, by channel name: what `push.publish` and client
 * publishes on those channels must match.
 */
export class ChannelSchemas {
  readonly #schemas = new Map<string, StandardSchemaV1>()

  /** Throws `INVALID_OPTIONS` for a malformed name, a missing schema, or a channel listed twice. */
  constructor(channels: readonly ChannelDefinition[] = []) {
    for (const definition of channels) {
      const name = (definition as Partial<ChannelDefinition> | undefined)?.name
      if (typeof name !== 'string' || !isChannelName(name)) {
        throw new PushError('INVALID_OPTIONS', `channels: ${JSON.stringify(name)} is not a channel name (1 to 128 of A-Z a-z 0-9 _ . : @ / -); list defineChannel(name, schema) results`)
      }
      if (typeof definition.schema?.['~standard']?.validate !== 'function') {
        throw new PushError('INVALID_OPTIONS', `channels: the schema of ${JSON.stringify(name)} is not a Standard Schema (zod 4, valibot, arktype, …)`)
      }
      if (this.#schemas.has(name)) throw new PushError('INVALID_OPTIONS', `channels: ${JSON.stringify(name)} is listed twice`)
      this.#schemas.set(name, definition.schema)
    }
  }

  /**
   * Why `data` may not be published on `channel`, as an `INVALID_DATA` message; undefined when it
   * may (it matches the channel's schema, or the channel has none). The data published is `data`
   * as given, not the schema's output: subscribers validate it again with their own schema.
   * `own` is the schema of the definition `push.publish` was given, checked too when it is not the
   * listed one.
   */
  async check(channel: string, data: unknown, own?: StandardSchemaV1): Promise<string | undefined> {
    const listed = this.#schemas.get(channel)
    if (own && own !== listed) {
      const invalid = await this.#checkWith(own, channel, data)
      if (invalid) return invalid
    }
    return listed && this.#checkWith(listed, channel, data)
  }

  async #checkWith(schema: StandardSchemaV1, channel: string, data: unknown): Promise<string | undefined> {
    const result = await validateWith(schema, data)
    return result.issues ? `data does not match the schema of channel ${JSON.stringify(channel)}: ${describeIssues(result.issues)}` : undefined
  }
}
