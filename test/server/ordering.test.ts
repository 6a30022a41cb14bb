import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { startPushFixture, type PushFixture } from '../helpers/push-fixture.js'

describe('websocket request order', () => {
  let fixture: PushFixture
  afterEach(() => fixture.close())

  it('applies a subscribe before the publish sent right after it', async () => {
    fixture = await startPushFixture({ heartbeatMs: 5000 })
    await fixture.push.publish('room', { n: 0 })
    const ws = new WebSocket(`${fixture.directUrl.replace('http', 'ws')}/ws`, 'pushline.v1')
    const frames: Array<{ type: string; [key: string]: unknown }> = []
    await new Promise<void>((resolve, reject) => {
      ws.on('error', reject)
      ws.on('message', (raw) => {
        for (const line of raw.toString().split('\n')) {
          const frame = JSON.parse(line) as { type: string }
          frames.push(frame)
          if (frame.type === 'hello') {
            ws.send(JSON.stringify({ type: 'subscribe', channel: 'room', rid: 's1' }))
            ws.send(JSON.stringify({ type: 'publish', channel: 'room', rid: 'p1', data: { n: 1 } }))
          }
          if (frames.some((f) => f.type === 'ack') && frames.some((f) => f.type === 'message')) resolve()
        }
      })
    })
    ws.close()
    expect(frames.map((f) => f.type)).toEqual(['hello', 'subscribed', 'message', 'ack'])
    expect(frames[1]).toMatchObject({ channel: 'room', offset: 1 })
    expect(frames[2]).toMatchObject({ channel: 'room', offset: 2, data: { n: 1 } })
    expect(frames[3]).toMatchObject({ rid: 'p1', offset: 2 })
  })
})
