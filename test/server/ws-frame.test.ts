import { describe, expect, it } from 'vitest'
import { createRequire } from 'node:module'
import { wsTextFrame } from '../../src/server/endpoints/websocket.js'

// ws's own framing, which its types don't export.
const Sender = (createRequire(import.meta.url)('ws') as { Sender: { frame: (data: Buffer, options: object) => Buffer[] } }).Sender

describe('wsTextFrame', () => {
  // The bytes must be exactly what ws would write for a final, unmasked, uncompressed text message.
  it.each([0, 1, 125, 126, 127, 65535, 65536, 70000])('matches ws framing for a %i-byte payload', (length) => {
    const payload = Buffer.alloc(length, 0x61)
    const options = { fin: true, opcode: 1, mask: false, readOnly: true, rsv1: false }
    const expected = Buffer.concat(Sender.frame(payload, options))
    expect(wsTextFrame(payload).equals(expected)).toBe(true)
  })
})
