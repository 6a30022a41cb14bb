import { describe, expect, it } from 'vitest'
import { PushError, isPushError } from '../../src/index.js'

describe('isPushError', () => {
  it('is true for a PushError, with its code readable after the check', () => {
    const error: unknown = new PushError('PUBLISH_TIMEOUT', 'no ack in time', { channel: 'chat' })
    expect(isPushError(error)).toBe(true)
    if (isPushError(error)) expect(error.code).toBe('PUBLISH_TIMEOUT')
  })

  it('is true for a PushError of another copy of pushline, where instanceof is false', () => {
    // What the CJS build's class looks like to code holding the ESM build's, and vice versa.
    class OtherCopyPushError extends Error {
      override readonly name = 'PushError'
      constructor(readonly code: string) {
        super('from the other copy')
      }
    }
    const foreign = new OtherCopyPushError('UNAUTHORIZED')
    expect(foreign instanceof PushError).toBe(false)
    expect(isPushError(foreign)).toBe(true)
  })

  it('is false for other errors and other values', () => {
    expect(isPushError(new Error('x'))).toBe(false)
    expect(isPushError(Object.assign(new Error('x'), { code: 'UNAUTHORIZED' }))).toBe(false)
    expect(isPushError({ name: 'PushError' })).toBe(false)
    for (const value of [undefined, null, 'PushError', 42, {}]) expect(isPushError(value)).toBe(false)
  })
})

describe('PushError', () => {
  it('has its transport and channel as own properties, set or not, and status or closeCode where given', () => {
    const plain = new PushError('INTERNAL', 'x')
    expect(Object.keys(plain)).toEqual(expect.arrayContaining(['code', 'transport', 'channel']))
    expect(plain.transport).toBeUndefined()
    expect(plain.status).toBeUndefined()
    const refused = new PushError('UNAUTHORIZED', 'sse failed (HTTP 401)', { transport: 'sse', status: 401 })
    expect([refused.transport, refused.status, refused.closeCode]).toEqual(['sse', 401, undefined])
    const cause = new Error('underneath')
    expect(new PushError('TRANSPORT_FAILED', 'x', { cause }).cause).toBe(cause)
    expect('cause' in new PushError('TRANSPORT_FAILED', 'x', { cause: undefined })).toBe(false)
  })
})
