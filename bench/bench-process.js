// What every bench script needs from its own process: integer settings from the environment, and a
// guard that kills the child processes it started (by pid, only those) when it gives up, is
// interrupted or crashes, so that no run outlives its time.

/**
 * `process.env[name]` as an integer in [min, max], or `fallback` when unset or empty. Anything else
 * ends the script with status 2 and a line naming the variable.
 */
export function intFromEnv(name, fallback, min, max) {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value < min || value > max) {
    console.error(`${name} must be an integer in [${min}, ${max}], got ${JSON.stringify(raw)}`)
    process.exit(2)
  }
  return value
}

/**
 * Caps the script at `timeoutMs` and stops it on SIGINT, SIGTERM and an uncaught exception. Returns
 * the set to add each started child process to, and `shutdown(code)`, which SIGKILLs the children
 * still running and exits.
 * @param {string} name the script's name, for the give-up line
 * @param {number} timeoutMs
 */
export function guardChildren(name, timeoutMs) {
  /** @type {Set<import('node:child_process').ChildProcess>} */
  const children = new Set()
  const shutdown = (code) => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL')
    process.exit(code)
  }
  const watchdog = setTimeout(() => {
    console.error(`${name}: gave up after ${timeoutMs / 60_000} min`)
    shutdown(1)
  }, timeoutMs)
  watchdog.unref()
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => shutdown(130))
  process.on('uncaughtException', (error) => {
    console.error(error)
    shutdown(1)
  })
  return { children, shutdown }
}
