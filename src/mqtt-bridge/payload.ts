import type { MqttMessage } from './options.js'

// fatal: bytes that are not UTF-8 must fail to decode, not turn into U+FFFD.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** `application/json`, `text/json` and any `+json` type: payloads the content type says are JSON. */
const JSON_CONTENT_TYPE = /^(?:application|text)\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i

/**
 * Decodes an MQTT payload: JSON when it is UTF-8 that parses (and the content type, when the
 * publisher set one, is a JSON type), else UTF-8 text, else base64 of the bytes.
 */
export function decodePayload(bytes: Uint8Array, contentType?: string): Pick<MqttMessage, 'format' | 'payload'> {
  let text: string
  try {
    text = utf8.decode(bytes)
  } catch {
    return { format: 'base64', payload: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64') }
  }
  if (contentType === undefined || JSON_CONTENT_TYPE.test(contentType)) {
    try {
      return { format: 'json', payload: JSON.parse(text) as unknown }
    } catch {
      // Not JSON: text, below.
    }
  }
  return { format: 'text', payload: text }
}

/** A client publish's data as MQTT payload bytes: a string as its UTF-8, anything else as JSON. */
export function encodePayload(data: unknown): { payload: Buffer; contentType: string } {
  if (typeof data === 'string') return { payload: Buffer.from(data, 'utf8'), contentType: 'text/plain; charset=utf-8' }
  return { payload: Buffer.from(JSON.stringify(data) ?? 'null', 'utf8'), contentType: 'application/json' }
}
