import { describe, expect, it } from 'vitest'
import { PushError } from '../../src/errors.js'
import { decodeServerFrame } from '../../src/protocol/decode.js'

const valid = [
  { type: 'hello', v: 1, session: 's', heartbeatMs: 25_000, maxFrameBytes: 65_536, transports: ['websocket', 'sse'] },
  { type: 'subscribed', channel: 'orders', epoch: 'e1', offset: 0 },
  { type: 'subscribed', channel: 'orders', epoch: 'e1', offset: 3, rid: '7', gap: 'history-exhausted' },
  { type: 'message', channel: 'orders', event: 'message', data: { any: ['json'] }, offset: 4, id: 'e1-4' },
  { type: 'message', channel: 'orders', event: 'message', data: null, offset: 5, id: 'e1-5' },
  { type: 'gap', channel: 'orders', reason: 'epoch-changed', epoch: 'e2', offset: 0 },
  { type: 'ack', rid: '1', channel: 'chat', offset: 1, id: 'e-1' },
  { type: 'error', code: 'BAD_FRAME', message: 'nope' },
  { type: 'error', code: 'SOME_FUTURE_CODE', message: 'x', rid: '3', channel: 'c' },
  { type: 'ping' },
  { type: 'close', code: 'SERVER_SHUTDOWN', message: 'bye', retryMs: 1000 },
]

const malformed: [string, string][] = [
  ['not json', '{"type":'],
  ['not an object', '[1,2]'],
  ['null', 'null'],
  ['no type', '{"channel":"x"}'],
  // Found by the fuzz test: converting this `type` to a property key runs its `toString`, which throws.
  ['a type whose toString is not a function', '{"type":{"toString":0}}'],
  ['hello without heartbeat', '{"type":"hello","v":1,"session":"s","maxFrameBytes":1,"transports":[]}'],
  ['hello with zero heartbeat', '{"type":"hello","v":1,"session":"s","heartbeatMs":0,"maxFrameBytes":1,"transports":[]}'],
  ['subscribed with negative offset', '{"type":"subscribed","channel":"c","epoch":"e","offset":-1}'],
  ['subscribed with a bad epoch', '{"type":"subscribed","channel":"c","epoch":"e-1","offset":1}'],
  ['message with id of another offset', '{"type":"message","channel":"c","event":"m","data":1,"offset":2,"id":"e-3"}'],
  ['message with fractional offset', '{"type":"message","channel":"c","event":"m","data":1,"offset":2.5,"id":"e-2"}'],
  ['message without event', '{"type":"message","channel":"c","data":1,"offset":2,"id":"e-2"}'],
  ['ack without rid', '{"type":"ack","channel":"c","offset":1,"id":"e-1"}'],
  ['error with numeric rid', '{"type":"error","code":"X","message":"m","rid":1}'],
  ['close with string retryMs', '{"type":"close","code":"X","message":"m","retryMs":"10"}'],
]

describe('decodeServerFrame', () => {
  it('accepts every well-formed server frame as is', () => {
    for (const frame of valid) expect(decodeServerFrame(JSON.stringify(frame))).toEqual(frame)
  })

  it('ignores fields it does not know', () => {
    expect(decodeServerFrame('{"type":"ping","future":true}')).toEqual({ type: 'ping', future: true })
  })

  it('checks presence frames (protocol.md 2.4): members with string ids', () => {
    const sync = { type: 'presence', channel: 'room', action: 'sync', members: [{ id: 'a', joinedAt: 1 }] }
    expect(decodeServerFrame(JSON.stringify(sync))).toEqual(sync)
    const join = { type: 'presence', channel: 'room', action: 'join', member: { id: 'b', joinedAt: 2 } }
    expect(decodeServerFrame(JSON.stringify(join))).toEqual(join)
    for (const bad of [
      { ...sync, members: [{ joinedAt: 1 }] },
      { ...sync, members: null },
      { ...join, member: 'b' },
      { ...join, action: 'wave' },
      { type: 'presence', action: 'sync', members: [] },
    ]) {
      expect(() => decodeServerFrame(JSON.stringify(bad))).toThrow(PushError)
    }
  })

  it('skips frames of types it does not know', () => {
    expect(decodeServerFrame('{"type":"occupancy","who":[]}')).toBeUndefined()
    expect(decodeServerFrame('{"type":"toString"}')).toBeUndefined()
  })

  it.each(malformed)('throws PROTOCOL_ERROR for %s', (_, text) => {
    let thrown: unknown
    try {
      decodeServerFrame(text)
    } catch (error) {
      thrown = error
    }
    expect(thrown).toBeInstanceOf(PushError)
    expect((thrown as PushError).code).toBe('PROTOCOL_ERROR')
  })
})
