import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { PushError } from '../../src/errors.js'
import { decodeServerFrame } from '../../src/protocol/decode.js'
import { parseCursor } from '../../src/protocol/position.js'
import { parseRequestCursor } from '../../src/server/endpoints/stream-cursor.js'
import { clientFrameSchema, decodeFrame, httpPublishSchema } from '../../src/server/policy/frame-schema.js'

// Fuzzing the decoders (issue 11): whatever a peer sends, decoding never throws (or throws only
// the documented PROTOCOL_ERROR on the client) and answers with bounded text. npm test runs
// PUSHLINE_FUZZ_RUNS cases per property (1,000 by default); `npm run test:fuzz` runs 50 times more.

const RUNS = Number(process.env.PUSHLINE_FUZZ_RUNS ?? 1000)
const MAX_FRAME_BYTES = 65_536
const SERVER_CODES = new Set(['BAD_FRAME', 'FRAME_TOO_LARGE', 'INVALID_CHANNEL'])

/** Values that tend to break hand-written checks. */
const nasty = fc.oneof(
  fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', '', ' ', '\u0000', '\u2028', '</script>', 'é'),
  fc.constantFrom(Number.NaN, Infinity, -0, 2 ** 53, -1, 1e308),
  fc.constantFrom(null, true, false, [], {}),
)
const field = fc.oneof(fc.jsonValue(), nasty, fc.string({ maxLength: 200 }), fc.string({ unit: 'binary', maxLength: 80 }))
const frameLike = fc.record(
  {
    type: fc.oneof(fc.constantFrom('subscribe', 'unsubscribe', 'publish', 'pong', 'ping', 'hello'), field),
    channel: fc.oneof(fc.stringMatching(/^[\w.:@/-]{1,140}$/), field),
    rid: fc.oneof(fc.string({ minLength: 1, maxLength: 70 }), field),
    since: fc.oneof(fc.stringMatching(/^\w{1,34}-\d{1,18}$/), field),
    event: fc.oneof(fc.string({ maxLength: 70 }), field),
    key: fc.oneof(fc.string({ maxLength: 70 }), field),
    data: field,
  },
  { requiredKeys: [] },
)
/** JSON text of a frame-like object, of any JSON value, or no JSON at all. */
const text = fc.oneof(
  frameLike.map((frame) => JSON.stringify(frame)),
  fc.json(),
  fc.string({ maxLength: 300 }),
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.constantFrom('{"type":"subscribe","channel":"c","__proto__":{"since":"x-1"}}', '[', '{"type":', '1e999', '"\\ud800"'),
)

describe('fuzz: server frame decoder', () => {
  it('never throws, and answers a frame or a short error with a known code', () => {
    fc.assert(
      fc.property(text, fc.boolean(), (input, http) => {
        const schema = http ? httpPublishSchema : clientFrameSchema
        const bytes = Buffer.byteLength(input)
        const decoded = decodeFrame<unknown>(schema, input, bytes, MAX_FRAME_BYTES)
        if (decoded.ok) {
          expect(typeof decoded.frame).toBe('object')
          return
        }
        expect(SERVER_CODES.has(decoded.error.code)).toBe(true)
        expect(decoded.error.message.length).toBeLessThan(300)
        expect((decoded.error.channel ?? '').length).toBeLessThanOrEqual(128)
        expect((decoded.error.rid ?? '').length).toBeLessThanOrEqual(64)
      }),
      { numRuns: RUNS },
    )
  })

  it('keeps prototypes of decoded frames untouched', () => {
    fc.assert(
      fc.property(frameLike, (frame) => {
        const input = JSON.stringify(frame).replace(/^\{/, '{"__proto__":{"polluted":1},')
        decodeFrame<unknown>(clientFrameSchema, input, Buffer.byteLength(input), MAX_FRAME_BYTES)
        expect(({} as Record<string, unknown>).polluted).toBeUndefined()
      }),
      { numRuns: RUNS },
    )
  })
})

describe('fuzz: stream cursors', () => {
  const cursor = fc.oneof(
    fc.array(fc.tuple(fc.oneof(fc.stringMatching(/^[\w.:@/-]{1,130}$/), fc.string()), fc.option(fc.string())), {
      maxLength: 20,
    }).map((entries) => entries.map(([channel, position]) => (position === null ? channel : `${channel}=${position}`)).join(',')),
    fc.string({ maxLength: 400 }),
  )

  it('parses or refuses with a short message, never throws', () => {
    fc.assert(
      fc.property(cursor, (input) => {
        const parsed = parseRequestCursor(input, 16)
        if (!parsed.ok) expect(parsed.message.length).toBeLessThan(300)
        else expect(parsed.entries.length).toBeLessThanOrEqual(16)
        parseCursor(input)
      }),
      { numRuns: RUNS },
    )
  })
})

describe('fuzz: client frame decoder', () => {
  const serverFrameLike = fc.record(
    {
      type: fc.oneof(fc.constantFrom('hello', 'subscribed', 'message', 'gap', 'ack', 'error', 'ping', 'close'), field),
      v: field,
      session: field,
      heartbeatMs: field,
      maxFrameBytes: field,
      transports: fc.oneof(fc.array(fc.string()), field),
      channel: field,
      epoch: fc.oneof(fc.stringMatching(/^\w{1,32}$/), field),
      offset: fc.oneof(fc.nat(), field),
      id: fc.oneof(fc.stringMatching(/^\w{1,32}-\d{1,5}$/), field),
      event: field,
      data: field,
      code: field,
      message: field,
      retryMs: field,
    },
    { requiredKeys: [] },
  )

  it('returns a frame or undefined, or throws PROTOCOL_ERROR, nothing else', () => {
    fc.assert(
      fc.property(fc.oneof(serverFrameLike.map((frame) => JSON.stringify(frame)), text), (input) => {
        try {
          decodeServerFrame(input)
        } catch (error) {
          expect(error).toBeInstanceOf(PushError)
          expect((error as PushError).code).toBe('PROTOCOL_ERROR')
          expect((error as PushError).message.length).toBeLessThan(200)
        }
      }),
      { numRuns: RUNS },
    )
  })
})
