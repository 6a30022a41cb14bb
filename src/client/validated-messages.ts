import type { StandardSchemaV1 } from '../protocol/standard-schema.js'
import type { PushMessage, SubscriptionEmitter } from './subscription.js'

/**
 * Puts `schema` in front of a subscription's `message` listeners: each message's data is validated
 * first; a valid one reaches them with the schema's output as its data, an invalid one reaches
 * `invalid` listeners only.
 *
 * Order: a synchronous validator (zod's, unless the schema has async refinements) delivers at once.
 * With an asynchronous one, messages still reach listeners in the order they arrived, each after
 * the ones before it; the other events (`gap`, `subscribed`, `error`) are not held back, so they
 * may come before messages that arrived earlier and are still being validated. Messages still being
 * validated when the subscription ends are dropped (the client empties the emitter at the end).
 */
export function validateMessages(emitter: SubscriptionEmitter, schema: StandardSchemaV1): void {
  const emit = emitter.emit as (this: SubscriptionEmitter, event: string, ...args: unknown[]) => void
  /** Settles once the messages emitted so far were delivered; unset while none waits. */
  let queue: Promise<void> | undefined
  emitter.emit = (event, ...args) => {
    if (event !== 'message') return emit.call(emitter, event, ...args)
    const message = args[0] as PushMessage
    const deliver = (result: StandardSchemaV1.Result<unknown>): void =>
      result.issues
        ? emit.call(emitter, 'invalid', { message, issues: result.issues })
        : emit.call(emitter, 'message', { ...message, data: result.value })
    const checked = schema['~standard'].validate(message.data)
    if (!queue && !(checked instanceof Promise)) return deliver(checked)
    const next: Promise<void> = (queue = Promise.all([checked, queue]).then(([result]) => {
      if (queue === next) queue = undefined
      deliver(result)
    }))
  }
}
