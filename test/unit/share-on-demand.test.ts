/**
 * `share: true` on the PushClient of `pushline`: pushline/share is imported when the client first
 * connects. In Node there are no Web Locks, so each client keeps its own connection; the e2e suite
 * covers tabs sharing one in Chromium.
 */
import { describe, expect, it, vi } from 'vitest'
import { PushClient } from '../../src/index.js'
import { fakeTransport, flush } from './fakes.js'

const url = 'http://push.test/push'

describe('share: true', () => {
  it('loads pushline/share on connect, then connects on its own where tabs cannot share', async () => {
    const ws = fakeTransport('websocket')
    const client = new PushClient({ url, transports: [ws.factory], share: true })
    client.subscribe('news')
    client.connect()
    expect(ws.instances).toEqual([]) // waits for the module
    await vi.waitFor(() => expect(ws.instances).toHaveLength(1))
    expect(ws.last.opened).toBe(true)
    ws.last.hello(['websocket'])
    expect(client.state).toBe('open')
    expect(client.transport).toBe('websocket')
    expect(ws.last.sent).toEqual([expect.objectContaining({ type: 'subscribe', channel: 'news' })])
    client.close()
    expect(ws.last.closed).toBe(true)
  })

  it('opens nothing when the client closed before the module arrived', async () => {
    const ws = fakeTransport('websocket')
    const client = new PushClient({ url, transports: [ws.factory], share: true })
    client.connect()
    client.close()
    await import('../../src/client/share.js')
    await flush()
    expect(ws.instances).toEqual([])
  })

  it('takes false like no option, and a ShareFactory as is', async () => {
    const ws = fakeTransport('websocket')
    let asked = ''
    const client = new PushClient({
      url,
      transports: [ws.factory],
      share: (shared) => {
        asked = shared
        return undefined
      },
    })
    client.connect()
    expect(asked).toBe(url)
    expect(ws.last.opened).toBe(true)
    client.close()
    const unshared = new PushClient({ url, transports: [ws.factory], share: false })
    unshared.connect()
    expect(ws.instances).toHaveLength(2)
    unshared.close()
  })
})
