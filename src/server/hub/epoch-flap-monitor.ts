/**
 * Spots the most common first-deployment mistake: several pushline nodes,
 * each with its own in-memory broker, behind one round-robin URL. Each node
 * has its own epochs, so a polling client that lands on another node on
 * every poll resumes from an epoch this node never issued, gets an
 * `epoch-changed` gap and the node's whole history again, poll after poll
 * (300 published messages became 441,261 deliveries in a minute).
 *
 * One such resume per client session is normal (a restarted node, a channel
 * forgotten when idle); several from one session within a short window are
 * not. The session id is what polls carry from node to node.
 */
export interface EpochFlapMonitorOptions {
  /**
   * Foreign-epoch resumes of one session, within `windowMs`, that count as flapping.
   * @default 2
   */
  threshold?: number
  /**
   * @default 60_000
   */
  windowMs?: number
  /**
   * Sessions tracked at most; the oldest are forgotten first, so a flood of sessions costs bounded memory.
   * @default 10_000
   */
  maxSessions?: number
}

interface SessionRecord {
  firstAt: number
  count: number
}

export class EpochFlapMonitor {
  readonly #threshold: number
  readonly #windowMs: number
  readonly #maxSessions: number
  /** In insertion order, oldest first (Map order), for eviction. */
  readonly #sessions = new Map<string, SessionRecord>()

  constructor(options: EpochFlapMonitorOptions = {}) {
    this.#threshold = options.threshold ?? 2
    this.#windowMs = options.windowMs ?? 60_000
    this.#maxSessions = options.maxSessions ?? 10_000
  }

  /**
   * A session resumed a channel from an epoch this node does not have.
   * True when that makes the session a flapping one.
   */
  observe(session: string, now: number): boolean {
    let record = this.#sessions.get(session)
    if (!record || now - record.firstAt > this.#windowMs) {
      this.#sessions.delete(session)
      record = { firstAt: now, count: 0 }
      this.#sessions.set(session, record)
      if (this.#sessions.size > this.#maxSessions) {
        const oldest = this.#sessions.keys().next().value
        if (oldest !== undefined) this.#sessions.delete(oldest)
      }
    }
    record.count += 1
    return record.count >= this.#threshold
  }
}
