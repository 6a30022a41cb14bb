import { describe, expect, it } from 'vitest'
import { decodePayload, encodePayload } from '../../src/mqtt/payload.js'

const bytes = (text: string) => new TextEncoder().encode(text)

describe('MQTT payloads', () => {
  it('decodes JSON, else UTF-8 text, else base64 of the bytes', () => {
    expect(decodePayload(bytes('{"t":21.5}'))).toEqual({ format: 'json', payload: { t: 21.5 } })
    expect(decodePayload(bytes('21.5'))).toEqual({ format: 'json', payload: 21.5 })
    expect(decodePayload(bytes('on'))).toEqual({ format: 'text', payload: 'on' })
    expect(decodePayload(bytes(''))).toEqual({ format: 'text', payload: '' })
    expect(decodePayload(bytes('température'))).toEqual({ format: 'text', payload: 'température' })
    const binary = new Uint8Array([0xc3, 0x28, 0x00, 0xff])
    expect(decodePayload(binary)).toEqual({ format: 'base64', payload: 'wygA/w==' })
  })

  it('decodes only the bytes of a view, not the rest of its buffer', () => {
    const buffer = Buffer.from('xx{"a":1}yy')
    expect(decodePayload(buffer.subarray(2, 9))).toEqual({ format: 'json', payload: { a: 1 } })
    const binary = Buffer.from([0x41, 0xff, 0x42]).subarray(1, 2)
    expect(decodePayload(binary)).toEqual({ format: 'base64', payload: '/w==' })
    const large = new Uint8Array(200_000).map((_, i) => (i * 7) % 256)
    expect(decodePayload(large)).toEqual({ format: 'base64', payload: Buffer.from(large).toString('base64') })
  })

  it('parses JSON only when the MQTT 5 content type, if any, is a JSON type', () => {
    expect(decodePayload(bytes('42'), 'text/plain')).toEqual({ format: 'text', payload: '42' })
    expect(decodePayload(bytes('42'), 'application/json')).toEqual({ format: 'json', payload: 42 })
    expect(decodePayload(bytes('{"a":1}'), 'application/vnd.api+json; charset=utf-8')).toEqual({
      format: 'json',
      payload: { a: 1 },
    })
    // A JSON content type on bytes that are not JSON: the text, not an error.
    expect(decodePayload(bytes('{oops'), 'application/json')).toEqual({ format: 'text', payload: '{oops' })
  })

  it('encodes a client publish: a string as its UTF-8, anything else as JSON', () => {
    expect(encodePayload('on')).toEqual({ payload: bytes('on'), contentType: 'text/plain; charset=utf-8' })
    expect(encodePayload({ on: true })).toEqual({ payload: bytes('{"on":true}'), contentType: 'application/json' })
    expect(encodePayload(null)).toEqual({ payload: bytes('null'), contentType: 'application/json' })
  })
})
