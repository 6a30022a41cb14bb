import { describe, expect, it } from 'vitest'
import { authHeaders, endpointUrl } from '../../src/transports/http.js'

describe('endpointUrl', () => {
  it('appends the endpoint below the base, with or without a trailing slash', () => {
    expect(endpointUrl('http://example.com/push', 'sse').href).toBe('http://example.com/push/sse')
    expect(endpointUrl('http://example.com/push/', 'publish').href).toBe('http://example.com/push/publish')
    expect(endpointUrl('http://example.com', 'sse').href).toBe('http://example.com/sse')
  })

  it('maps http(s) to ws(s) for WebSocket and keeps the query', () => {
    expect(endpointUrl('https://example.com/push?tenant=a', 'ws', true).href).toBe('wss://example.com/push/ws?tenant=a')
    expect(endpointUrl('http://localhost:8080/push', 'ws', true).href).toBe('ws://localhost:8080/push/ws')
  })
})

describe('authHeaders', () => {
  it('is a Bearer Authorization header, or nothing', () => {
    expect(authHeaders('abc')).toEqual({ Authorization: 'Bearer abc' })
    expect(authHeaders(undefined)).toEqual({})
  })
})
