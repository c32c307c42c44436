import { existsSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const CHROMIUM = process.env.HEARSAY_CHROMIUM ?? '/usr/bin/chromium'
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run']

/** Why browser tests cannot run here, or undefined when they can. */
export function browserMissing (): string | undefined {
  if (existsSync(CHROMIUM)) return undefined
  return `no Chromium at ${CHROMIUM}: run \`pnpm setup:browser\` (installs Debian's chromium) or set HEARSAY_CHROMIUM`
}

export const WEB_DIR = join(dirname(fileURLToPath(import.meta.url)), '../dist/web')

/** Bundle the web UI (fast) so the test never runs against a stale build. */
export function buildWeb (): void {
  execFileSync(process.execPath, [join(dirname(fileURLToPath(import.meta.url)), '../scripts/bundle.mjs')], { stdio: 'inherit' })
}
