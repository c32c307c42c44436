/**
 * The last-resort guard: code that runs because of what a peer sent (frame handling, the
 * session's inbox, callbacks for that session, timers acting on state peers supplied) must never
 * throw into the event loop, where an uncaught exception or an unhandled rejection would end the
 * process. Each such entry point runs through `guarded`; a throw is logged with what was running
 * and handed to `onFault` (a session closes itself, a timer counts it), and the node goes on.
 *
 * This is a backstop: every cause found is fixed where it starts (bounds on decode, cluster
 * trust rules). A fault counted here is a bug to report.
 */
import type { Log } from './logger.js'

/** Run `fn`; if it throws, log `what` with the error and call `onFault` instead of throwing. */
export function guarded<T> (log: Log, what: string, fn: () => T, onFault: (err: unknown) => void): T | undefined {
  try {
    return fn()
  } catch (err) {
    log.error('%s threw: %s', what, describe(err))
    try {
      onFault(err)
    } catch (again) {
      log.error('handling a fault in %s threw too: %s', what, describe(again))
    }
    return undefined
  }
}

/** `name: message` of an error, or its string form. */
export function describe (err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err)
}
