/**
 * The real demo (demo-server/server.js, as `npm run demo` runs it) in Chromium: for every single
 * transport its picker offers, the page must say it uses that transport and show a live message
 * that came through it. Screenshots go to e2e/artifacts/demo-<transport>.png.
 *
 * The demo accepts PORT=0 but then prints port 0 instead of the one it got, so the test picks a
 * free port itself and passes it in.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect } from 'vitest'
import { requireBuild, root, screenshot, test } from './harness.js'
import { freePort } from '../test/helpers/loopback-port.js'

interface Demo {
  readonly origin: string
  readonly pid: number
  /** stdout and stderr so far, for failure messages. */
  output(): string
  /** SIGTERM by pid; resolves with the exit code (the demo shuts down cleanly on SIGTERM). */
  stop(): Promise<number | null>
}


/** Starts the demo on a free port; resolves once it prints its URL. */
async function startDemo(): Promise<Demo> {
  const port = await freePort()
  const child: ChildProcess = spawn(process.execPath, [join(root, 'demo-server/server.js')], {
    cwd: root,
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()))
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
  const origin = `http://127.0.0.1:${port}`
  const started = Date.now()
  while (!output.includes(`${origin}/`)) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the demo exited early:\n${output}`)
    if (Date.now() - started > 15_000) {
      child.kill('SIGKILL')
      throw new Error(`the demo did not start in 15 s:\n${output}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  const pid = child.pid as number
  return {
    origin,
    pid,
    output: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
      process.kill(pid, 'SIGTERM')
      const timer = setTimeout(() => process.kill(pid, 'SIGKILL'), 5000)
      const [code] = await exited
      clearTimeout(timer)
      return code
    },
  }
}

let demo: Demo | undefined
beforeAll(async () => {
  requireBuild()
  demo = await startDemo()
})
afterAll(async () => {
  await demo?.stop()
})

const text = (page: Page, selector: string) => page.locator(selector).textContent({ timeout: 1000 }).catch(() => null)

describe('demo-server/server.js', () => {
  test('shows each transport of its picker in use with live messages (screenshots)', async ({ chromium }) => {
    if (!demo) throw new Error('the demo is not running')
    const page = await chromium.newPage()
    const uncaught: string[] = []
    page.on('pageerror', (error) => uncaught.push(error.message))
    try {
      await page.goto(`${demo.origin}/`)
      // The default picks the best transport that works.
      await expect.poll(() => text(page, '#state'), { timeout: 10_000 }).toBe('open')
      expect(await text(page, '#transport')).toBe('websocket')

      // Every option that names one transport; the demo's list grows with the client's.
      const options = await page.locator('#picker option').evaluateAll((elements) =>
        elements.map((element) => (element as HTMLOptionElement).value),
      )
      const transports = options.filter((value) => value && !value.includes(','))
      expect(transports).toEqual(['websocket', 'sse', 'long-polling', 'short-polling', 'iframe'])

      for (const transport of transports) {
        // Pick it, and count the live messages shown so far in the same task: the picker restarts
        // the client synchronously, so anything counted later came through the new one.
        const shownBefore = await page.evaluate((value) => {
          const picker = document.getElementById('picker') as HTMLSelectElement
          picker.value = value
          picker.dispatchEvent(new Event('change'))
          return document.querySelectorAll('#messages li').length
        }, transport)
        await expect.poll(() => text(page, '#state'), { timeout: 10_000 }).toBe('open')
        expect(await text(page, '#transport')).toBe(transport)
        // The feeds publish an order update about every 2 s.
        await expect
          .poll(() => page.locator('#messages li').count(), { timeout: 10_000, message: `a live message over ${transport}` })
          .toBeGreaterThan(shownBefore)
        const latest = await text(page, '#messages li:first-child')
        expect(latest).toMatch(/(orders|notifications|chat) \S+ #\d+ \{/)
        expect(await text(page, '#transport')).toBe(transport)
        await screenshot(page, `demo-${transport}`)
      }
      expect(uncaught).toEqual([])
    } finally {
      await page.close()
    }
    const code = await demo.stop()
    expect(code, demo.output()).toBe(0)
  })
})
