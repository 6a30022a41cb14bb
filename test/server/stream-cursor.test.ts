import { describe, expect, it } from 'vitest'
import { CursorTracker, applyLastEventId, parseRequestCursor } from '../../src/server/endpoints/stream-cursor.js'

describe('request cursors', () => {
  it('parses entries in order, with and without positions', () => {
    expect(parseRequestCursor('orders=k3f9a1-42,chat=b81x-7,news', 10)).toEqual({
      ok: true,
      entries: [
        { channel: 'orders', position: { epoch: 'k3f9a1', offset: 42 } },
        { channel: 'chat', position: { epoch: 'b81x', offset: 7 } },
        { channel: 'news' },
      ],
    })
    expect(parseRequestCursor('', 10)).toEqual({ ok: true, entries: [] })
  })

  it.each([
    ['a,', 'INVALID_CHANNEL'],
    ['a b', 'INVALID_CHANNEL'],
    ['=e-1', 'INVALID_CHANNEL'],
    ['a,a=e-1', 'BAD_FRAME'],
    ['a=', 'BAD_FRAME'],
    ['a=e', 'BAD_FRAME'],
    ['a=e-x', 'BAD_FRAME'],
    ['a,b,c', 'TOO_MANY_SUBSCRIPTIONS'],
  ])('rejects %j with %s', (cursor, code) => {
    expect(parseRequestCursor(cursor, 2)).toMatchObject({ ok: false, code })
  })

  it('lets Last-Event-ID override positions of the channels the request names', () => {
    const parsed = parseRequestCursor('a=e-0,b,c=e-5', 10)
    if (!parsed.ok) throw new Error('parse failed')
    expect(applyLastEventId(parsed.entries, 'a=e-2,b=f-1,x=e-9,c')).toEqual([
      { channel: 'a', position: { epoch: 'e', offset: 2 } },
      { channel: 'b', position: { epoch: 'f', offset: 1 } },
      // The header has no position for c: the request's stays.
      { channel: 'c', position: { epoch: 'e', offset: 5 } },
    ])
    expect(applyLastEventId(parsed.entries, 'not a cursor!')).toBe(parsed.entries)
    expect(applyLastEventId(parsed.entries, undefined)).toBe(parsed.entries)
  })

  it('tracks the cursor as positions advance', () => {
    const tracker = new CursorTracker([{ channel: 'a' }, { channel: 'b', position: { epoch: 'e', offset: 3 } }])
    expect(tracker.format()).toBe('a,b=e-3')
    tracker.advance({ channel: 'a', epoch: 'f', offset: 0 })
    expect(tracker.format()).toBe('a=f-0,b=e-3')
    tracker.advance({ channel: 'b', epoch: 'e', offset: 4 })
    expect(tracker.format()).toBe('a=f-0,b=e-4')
    expect(tracker.size).toBe(2)
  })

  it('tracks a stream of many channels the same way, in request order', () => {
    const channels = Array.from({ length: 12 }, (_, i) => `ch${i}`)
    const tracker = new CursorTracker(channels.map((channel) => ({ channel })))
    tracker.advance({ channel: 'ch10', epoch: 'e', offset: 5 })
    tracker.advance({ channel: 'ch0', epoch: 'e', offset: 1 })
    expect(tracker.format()).toBe(channels.map((c) => (c === 'ch10' ? 'ch10=e-5' : c === 'ch0' ? 'ch0=e-1' : c)).join(','))
    expect(tracker.size).toBe(12)
  })
})
