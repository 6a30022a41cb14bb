import { describe, expect, it } from 'vitest'
import { clientFrameSchema, decodeFrame, httpPublishSchema } from '../../src/server/policy/frame-schema.js'

const MAX = 1024

function decode(text: string) {
  return decodeFrame(clientFrameSchema, text, Buffer.byteLength(text), MAX)
}

describe('client frame validation', () => {
  it.each([
    ['subscribe', { type: 'subscribe', channel: 'orders' }],
    ['subscribe with rid and since', { type: 'subscribe', channel: 'a.b:c@d/e-f_1', rid: 'r1', since: 'k3f9a1-42' }],
    ['subscribe from the start of an epoch', { type: 'subscribe', channel: 'x', since: 'E_1-0' }],
    ['unsubscribe', { type: 'unsubscribe', channel: 'orders' }],
    ['publish', { type: 'publish', rid: 'p', channel: 'orders', data: { n: 1 } }],
    ['publish with event, key and null data', { type: 'publish', rid: 'p', channel: 'c', event: 'e', key: 'k', data: null }],
    ['pong', { type: 'pong' }],
    ['unknown fields ignored', { type: 'pong', extra: [1, 2] }],
    ['128-char channel', { type: 'unsubscribe', channel: 'c'.repeat(128) }],
  ])('accepts %s', (_name, frame) => {
    const result = decode(JSON.stringify(frame))
    expect(result.ok).toBe(true)
    if (result.ok) expect(result.frame.type).toBe(frame.type)
  })

  it('parses since into a position and drops unknown fields', () => {
    const result = decode('{"type":"subscribe","channel":"c","since":"ab-7","x":1}')
    expect(result).toEqual({ ok: true, frame: { type: 'subscribe', channel: 'c', since: { epoch: 'ab', offset: 7 } } })
  })

  it.each([
    ['not JSON', '{"type":', 'BAD_FRAME'],
    ['empty', '', 'BAD_FRAME'],
    ['an array', '[]', 'BAD_FRAME'],
    ['a string', '"subscribe"', 'BAD_FRAME'],
    ['null', 'null', 'BAD_FRAME'],
    ['no type', '{"channel":"c"}', 'BAD_FRAME'],
    ['unknown type', '{"type":"ping"}', 'BAD_FRAME'],
    ['type of wrong kind', '{"type":5}', 'BAD_FRAME'],
    ['missing channel', '{"type":"subscribe"}', 'BAD_FRAME'],
    ['numeric channel', '{"type":"subscribe","channel":5}', 'BAD_FRAME'],
    ['channel with space', '{"type":"subscribe","channel":"a b"}', 'INVALID_CHANNEL'],
    ['empty channel', '{"type":"unsubscribe","channel":""}', 'INVALID_CHANNEL'],
    ['129-char channel', `{"type":"subscribe","channel":"${'c'.repeat(129)}"}`, 'INVALID_CHANNEL'],
    ['channel with comma', '{"type":"publish","rid":"r","channel":"a,b","data":1}', 'INVALID_CHANNEL'],
    ['since without offset', '{"type":"subscribe","channel":"c","since":"abc"}', 'BAD_FRAME'],
    ['since with dash in epoch', '{"type":"subscribe","channel":"c","since":"a-b-1"}', 'BAD_FRAME'],
    ['since negative', '{"type":"subscribe","channel":"c","since":"a--1"}', 'BAD_FRAME'],
    ['since number', '{"type":"subscribe","channel":"c","since":5}', 'BAD_FRAME'],
    ['empty rid', '{"type":"subscribe","channel":"c","rid":""}', 'BAD_FRAME'],
    ['publish without rid', '{"type":"publish","channel":"c","data":1}', 'BAD_FRAME'],
    ['publish without data', '{"type":"publish","rid":"r","channel":"c"}', 'BAD_FRAME'],
    ['65-char rid', `{"type":"publish","rid":"${'r'.repeat(65)}","channel":"c","data":1}`, 'BAD_FRAME'],
    ['65-char event', `{"type":"publish","rid":"r","channel":"c","event":"${'e'.repeat(65)}","data":1}`, 'BAD_FRAME'],
    ['empty event', '{"type":"publish","rid":"r","channel":"c","event":"","data":1}', 'BAD_FRAME'],
    ['65-char key', `{"type":"publish","rid":"r","channel":"c","key":"${'k'.repeat(65)}","data":1}`, 'BAD_FRAME'],
    ['bad channel and bad rid', '{"type":"subscribe","channel":"a b","rid":5}', 'BAD_FRAME'],
    ['too large', `{"type":"publish","rid":"r","channel":"c","data":"${'x'.repeat(MAX)}"}`, 'FRAME_TOO_LARGE'],
  ])('rejects %s with %s', (_name, text, code) => {
    const result = decode(text)
    expect(result.ok).toBe(false)
    if (!result.ok) {
      expect(result.error.type).toBe('error')
      expect(result.error.code).toBe(code)
      expect(result.error.message).toEqual(expect.any(String))
    }
  })

  it.each([
    ['publish without data', '{"type":"publish","rid":"r","channel":"c"}', 'data: missing (protocol.md 2.2)'],
    ['since not an id', '{"type":"subscribe","channel":"c","since":"abc"}', 'since: must be a message id <epoch>-<offset> (protocol.md 2.2)'],
    ['since a number', '{"type":"subscribe","channel":"c","since":5}', 'since: expected a string, got a number (protocol.md 2.2)'],
    ['65-char rid', `{"type":"publish","rid":"${'r'.repeat(65)}","channel":"c","data":1}`, 'rid: expected 1 to 64 characters (protocol.md 2.2)'],
    ['unknown type', '{"type":"hello"}', 'type: expected subscribe, unsubscribe, publish or pong (protocol.md 2.2)'],
    ['bad channel', '{"type":"unsubscribe","channel":"a b/c"}', 'channel "a b/c": 1 to 128 of A-Z a-z 0-9 _ . : @ / - (protocol.md 1)'],
    ['too large', `{"type":"publish","rid":"r","channel":"c","data":"${'x'.repeat(MAX)}"}`, /^frame of \d+ bytes exceeds the server's maxFrameBytes of 1024$/],
  ])('says what is wrong and what is allowed, in its own words: %s', (_name, text, message) => {
    const result = decode(text)
    expect(result).toMatchObject({ ok: false, error: { message: typeof message === 'string' ? message : expect.stringMatching(message) } })
    // zod's wording describes the schema, not the protocol.
    expect(JSON.stringify(result)).not.toMatch(/Invalid input|nonoptional|received undefined/)
  })

  it('counts UTF-8 bytes, not characters, against the limit', () => {
    const text = JSON.stringify({ type: 'publish', rid: 'r', channel: 'c', data: 'é'.repeat(600) })
    expect(text.length).toBeLessThan(MAX)
    expect(decode(text)).toMatchObject({ ok: false, error: { code: 'FRAME_TOO_LARGE' } })
  })

  it('echoes rid and channel in the error so the client can match it', () => {
    const result = decode('{"type":"publish","rid":"r7","channel":"no good","data":1}')
    expect(result).toEqual({
      ok: false,
      error: { type: 'error', code: 'INVALID_CHANNEL', message: expect.any(String), rid: 'r7', channel: 'no good' },
    })
  })

  it('accepts an HTTP publish body without rid or type', () => {
    const text = '{"channel":"c","data":[1]}'
    expect(decodeFrame(httpPublishSchema, text, text.length, MAX)).toEqual({
      ok: true,
      frame: { rid: 'http', channel: 'c', data: [1] },
    })
    const wrongType = '{"type":"subscribe","channel":"c","data":1}'
    expect(decodeFrame(httpPublishSchema, wrongType, wrongType.length, MAX)).toMatchObject({
      ok: false,
      error: { code: 'BAD_FRAME' },
    })
  })
})
