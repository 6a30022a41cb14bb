import type { ErrorCode } from '../../protocol/frames.js'

/**
 * Whether a hook threw a PushError with `code` (its way to refuse with a message). Checked by
 * code, not instanceof: the app may hold another copy of the class (the CJS and ESM builds, or
 * two bundles).
 */
export function isPushError(error: unknown, code: ErrorCode): error is Error & { code: ErrorCode } {
  return error instanceof Error && (error as { code?: unknown }).code === code
}
