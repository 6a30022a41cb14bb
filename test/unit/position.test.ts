import { describe, expect, it } from 'vitest'
import { formatCursor, formatId, isChannelName, parseCursor, parseId } from '../../src/protocol/position.js'

describe('message ids', () => {
  it('formats and parses <epoch>-<offset>', () => {
    expect(formatId('k3f9a1', 42)).toBe('k3f9a1-42')
    expect(parseId('k3f9a1-42')).toEqual({ epoch: 'k3f9a1', offset: 42 })
    expect(parseId('ep_1-0')).toEqual({ epoch: 'ep_1', offset: 0 })
  })

  it('rejects malformed ids', () => {
    for (const id of ['', '-1', 'abc', 'abc-', 'a-b-1', 'ab c-1', 'e-1.5', 'e--1', 'e-+1', 'e-99999999999999999', `${'x'.repeat(33)}-1`]) {
      expect(parseId(id), id).toBeUndefined()
    }
  })
})

describe('channel names', () => {
  it('accepts 1 to 128 of A-Z a-z 0-9 _ . : @ / -', () => {
    expect(isChannelName('orders')).toBe(true)
    expect(isChannelName('user:42/inbox@eu.west_1-a')).toBe(true)
    expect(isChannelName('x'.repeat(128))).toBe(true)
  })

  it('rejects anything else', () => {
    for (const name of ['', 'x'.repeat(129), 'a b', 'a,b', 'a=b', 'é', 42, undefined]) {
      expect(isChannelName(name), String(name)).toBe(false)
    }
  })
})

describe('stream cursors', () => {
  it('formats entries live or resuming, in order', () => {
    const cursor = formatCursor([
      { channel: 'orders', position: { epoch: 'k3f9a1', offset: 42 } },
      { channel: 'chat', position: { epoch: 'b81x', offset: 7 } },
      { channel: 'news' },
    ])
    expect(cursor).toBe('orders=k3f9a1-42,chat=b81x-7,news')
    expect(parseCursor(cursor)).toEqual([
      { channel: 'orders', position: { epoch: 'k3f9a1', offset: 42 } },
      { channel: 'chat', position: { epoch: 'b81x', offset: 7 } },
      { channel: 'news' },
    ])
  })

  it('allows the empty cursor', () => {
    expect(formatCursor([])).toBe('')
    expect(parseCursor('')).toEqual([])
  })

  it('rejects repeats, bad channels, bad positions and too many entries', () => {
    for (const cursor of ['a,a', 'a=e-1,a', 'a b', 'a=', 'a=e', 'a=e-x', ',a', 'a,', '=e-1']) {
      expect(parseCursor(cursor), cursor).toBeUndefined()
    }
    expect(parseCursor('a,b,c', 2)).toBeUndefined()
    expect(parseCursor('a,b', 2)).toHaveLength(2)
  })
})
