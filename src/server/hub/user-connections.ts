import type { Connection } from './connection.js'

/** Timers overflow past 2^31 - 1 ms and would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1

/**
 * The connections of each user, for `disconnectUser`, and the expiry of each connection's
 * credentials: a timer only for connections whose identity has `expiresAt`.
 */
export class UserConnections {
  readonly #byUser = new Map<string, Set<Connection>>()
  readonly #expiries = new Map<Connection, ReturnType<typeof setTimeout>>()
  readonly #onExpired: (connection: Connection) => void

  constructor(onExpired: (connection: Connection) => void) {
    this.#onExpired = onExpired
  }

  add(connection: Connection, now = Date.now()): void {
    const identity = connection.identity
    if (!identity) return
    let connections = this.#byUser.get(identity.userId)
    if (!connections) this.#byUser.set(identity.userId, (connections = new Set()))
    connections.add(connection)
    if (identity.expiresAt !== undefined) this.#watchExpiry(connection, identity.expiresAt - now)
  }

  remove(connection: Connection): void {
    clearTimeout(this.#expiries.get(connection))
    this.#expiries.delete(connection)
    const userId = connection.identity?.userId
    if (userId === undefined) return
    const connections = this.#byUser.get(userId)
    connections?.delete(connection)
    if (connections?.size === 0) this.#byUser.delete(userId)
  }

  of(userId: string): Connection[] {
    return [...(this.#byUser.get(userId) ?? [])]
  }

  #watchExpiry(connection: Connection, inMs: number): void {
    // Far-off expiries are checked again when the longest timer fires.
    const timer = setTimeout(
      () => {
        this.#expiries.delete(connection)
        const expiresAt = connection.identity?.expiresAt
        if (expiresAt !== undefined && expiresAt > Date.now()) this.#watchExpiry(connection, expiresAt - Date.now())
        else this.#onExpired(connection)
      },
      Math.max(0, Math.min(inMs, MAX_TIMER_MS)),
    )
    // An open connection keeps the process alive by its socket, not by this timer.
    timer.unref()
    this.#expiries.set(connection, timer)
  }
}
