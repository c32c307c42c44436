import { TimeoutError } from '../errors.js'

/** Poll `condition` until it holds or `timeoutMs` passes; never a fixed sleep. */
export async function waitFor (condition: () => boolean | Promise<boolean>, options: { timeoutMs?: number, intervalMs?: number, message?: string } = {}): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000)
  const interval = options.intervalMs ?? 5
  for (;;) {
    if (await condition()) return
    if (Date.now() > deadline) throw new TimeoutError(`timed out waiting for ${options.message ?? 'condition'}`)
    await new Promise(resolve => setTimeout(resolve, interval))
  }
}
