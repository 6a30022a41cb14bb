import type { InferInput, InferOutput, StandardSchemaV1 } from './standard-schema.js'

/**
 * A channel name with the schema of its messages' data, from {@link defineChannel}: given to
 * `client.subscribe()` and `usePush()` it types and validates what arrives, and listed in the
 * server's `channels` option it validates what is published.
 */
export interface ChannelDefinition<Schema extends StandardSchemaV1 = StandardSchemaV1> {
  readonly name: string
  readonly schema: Schema
}

/** The type of a channel's data once validated. */
export type ChannelData<Channel extends ChannelDefinition> = InferOutput<Channel['schema']>

/** The type of data a publish on the channel must have. */
export type ChannelInput<Channel extends ChannelDefinition> = InferInput<Channel['schema']>

/**
 * Names a channel and the Standard Schema (zod 4, valibot, arktype, …) its data follows; define it
 * once in code shared by the app and its server. The name is checked where it is used (subscribe,
 * the server's options), as any channel name is.
 */
export function defineChannel<const Name extends string, Schema extends StandardSchemaV1>(
  name: Name,
  schema: Schema,
): ChannelDefinition<Schema> & { readonly name: Name } {
  return { name, schema }
}
