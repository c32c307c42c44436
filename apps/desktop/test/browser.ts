import { execFileSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export { browserMissing, CHROMIUM, CHROMIUM_ARGS } from '../../../test/browser/chromium.js'

export const WEB_DIR = join(dirname(fileURLToPath(import.meta.url)), '../dist/web')

/** Bundle the web UI (fast) so the test never runs against a stale build. */
export function buildWeb (): void {
  execFileSync(process.execPath, [join(dirname(fileURLToPath(import.meta.url)), '../scripts/bundle.mjs')], { stdio: 'inherit' })
}
