/**
 * Where the browser tests find Chromium: Debian's `chromium` (`pnpm setup:browser` installs it),
 * driven by `playwright-core`, which never downloads a browser. Tests skip with `browserMissing()`'s
 * message where it is not installed.
 */
import { existsSync } from 'node:fs'

export const CHROMIUM = process.env.HEARSAY_CHROMIUM ?? '/usr/bin/chromium'
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run']

/** Why browser tests cannot run here, or undefined when they can. */
export function browserMissing (): string | undefined {
  if (existsSync(CHROMIUM)) return undefined
  return `no Chromium at ${CHROMIUM}: run \`pnpm setup:browser\` (installs Debian's chromium) or set HEARSAY_CHROMIUM`
}
