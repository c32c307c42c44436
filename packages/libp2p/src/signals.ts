/**
 * Abort signals on the injected clock. Dials, stream opens and `connect()` are bounded by these
 * instead of `AbortSignal.timeout`, so the dialler and the channel table time out on the same
 * `Timers` they schedule with (a virtual clock in tests).
 */
import type { Timers } from '@hearsay/core'

/** A signal aborted with a `TimeoutError` after `ms` on `timers`, like `AbortSignal.timeout(ms)`. */
export function timeoutSignal (timers: Timers, ms: number): AbortSignal {
  const controller = new AbortController()
  timers.setTimeout(() => {
    controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError'))
  }, ms)
  return controller.signal
}

/** `b`, or both when the caller passed a signal of its own. */
export function anySignal (a: AbortSignal | undefined, b: AbortSignal): AbortSignal {
  return a === undefined ? b : AbortSignal.any([a, b])
}
