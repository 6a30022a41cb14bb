import { afterEach, describe, expect, it, vi } from 'vitest'
import { PollRounds } from '../../src/server/endpoints/poll.js'
import type { PollConnection } from '../../src/server/endpoints/poll.js'
import type { Hub } from '../../src/server/hub/hub.js'
import { OutFrame } from '../../src/server/hub/out-frame.js'

afterEach(() => {
  vi.useRealTimers()
})

/** A stand-in for a held poll: PollRounds only calls `answer` when its wait is over. */
function heldPoll(name: string, answered: string[]): PollConnection {
  return { answer: () => answered.push(name) } as unknown as PollConnection
}

const rounds = () => new PollRounds({ remove: () => undefined } as unknown as Hub, 1 << 20)

describe('PollRounds', () => {
  it('answers each held poll at its own deadline with one timer per wait time, and not once unwaited', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })
    const polls = rounds()
    const answered: string[] = []
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((name) => heldPoll(name, answered)) as [
      PollConnection,
      PollConnection,
      PollConnection,
      PollConnection,
    ]
    polls.wait(a, 1000)
    vi.advanceTimersByTime(400)
    polls.wait(b, 1000)
    polls.wait(c, 300)
    polls.wait(d, 1000)
    expect(vi.getTimerCount()).toBe(2)
    vi.advanceTimersByTime(299)
    expect(answered).toEqual([])
    vi.advanceTimersByTime(1)
    expect(answered).toEqual(['c'])
    // a's deadline passes; b and d, which came later, still wait.
    vi.advanceTimersByTime(300)
    expect(answered).toEqual(['c', 'a'])
    polls.unwait(d, 1000)
    vi.advanceTimersByTime(399)
    expect(answered).toEqual(['c', 'a'])
    vi.advanceTimersByTime(1)
    expect(answered).toEqual(['c', 'a', 'b'])
    vi.advanceTimersByTime(10_000)
    expect(answered).toEqual(['c', 'a', 'b'])
    expect(vi.getTimerCount()).toBe(0)
  })

  it('leaves no timer behind when every poll of a wait time is unwaited, or when closed', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })
    const polls = rounds()
    const answered: string[] = []
    const a = heldPoll('a', answered)
    const b = heldPoll('b', answered)
    polls.wait(a, 500)
    polls.wait(b, 500)
    polls.unwait(a, 500)
    polls.unwait(b, 500)
    expect(vi.getTimerCount()).toBe(0)
    polls.wait(a, 500)
    polls.close()
    expect(vi.getTimerCount()).toBe(0)
    vi.advanceTimersByTime(1000)
    expect(answered).toEqual([])
  })

  it('builds an answer body of NDJSON lines, shared by the polls answered with the same frames', () => {
    const polls = rounds()
    const one = new OutFrame({ type: 'ping' })
    const two = new OutFrame({ type: 'close', code: 'SERVER_SHUTDOWN', message: 'bye' })
    const alone = polls.body([one], 16)
    expect(alone.toString()).toBe('{"type":"ping"}\n')
    expect(polls.body([one], 16)).toBe(alone)
    const bytes = alone.length + Buffer.byteLength(`${two.json}\n`)
    const both = polls.body([one, two], bytes)
    expect(both.toString()).toBe(`${one.json}\n${two.json}\n`)
    expect(polls.body([one, two], bytes)).toBe(both)
    expect(polls.body([two, one], bytes).toString()).toBe(`${two.json}\n${one.json}\n`)
  })
})
