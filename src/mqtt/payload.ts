/**
 * The `data` of every message that comes from MQTT, through the server's bridge
 * (`pushline/mqtt-bridge`) or the client's `mqtt()` transport (`pushline/mqtt`).
 *
 * The payload is decoded by what it is, never by guessing from the topic: JSON when the bytes are
 * UTF-8 that parses as JSON (and the MQTT 5 content type, when there is one, is a JSON type), else
 * UTF-8 text, else base64 of the raw bytes. `format` says which, so a consumer never has to guess.
 */
export interface MqttMessage {
  /** The concrete topic the device published on (never a filter). */
  topic: string
  /** How `payload` was decoded from the MQTT payload bytes. */
  format: 'json' | 'text' | 'base64'
  /** The parsed JSON value, the text, or the base64 of the bytes, as `format` says. */
  payload: unknown
  /**
   * True when the broker delivered this as the topic's retained message: the topic's last known
   * state, handed over because of a new subscription, not a new publish by the device. Absent
   * otherwise.
   */
  retained?: true
  /** MQTT 5 content type, when the publisher set one. */
  contentType?: string
  /** MQTT 5 user properties, when the publisher set any. */
  userProperties?: Record<string, string | string[]>
}

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
    return { format: 'base64', payload: base64(bytes) }
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
export function encodePayload(data: unknown): { payload: Uint8Array; contentType: string } {
  if (typeof data === 'string') return { payload: utf8Encoder.encode(data), contentType: 'text/plain; charset=utf-8' }
  return { payload: utf8Encoder.encode(JSON.stringify(data) ?? 'null'), contentType: 'application/json' }
}

const utf8Encoder = new TextEncoder()

/** Base64 with btoa, which browsers and Node both have (no Buffer in browsers). */
function base64(bytes: Uint8Array): string {
  let binary = ''
  // In chunks: spreading a large array into fromCharCode overflows the call stack.
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000))
  return btoa(binary)
}
