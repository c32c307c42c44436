/**
 * `hearsay-notes`: the Hearsay daemon serving the notes web UI. Same configuration as
 * `hearsay start` (config file, HEARSAY_* variables, flags); open the printed URL in a browser.
 */
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { main } from '@hearsay/daemon'

const web = join(dirname(fileURLToPath(import.meta.url)), '../dist/web')
if (!existsSync(join(web, 'app.js'))) {
  process.stderr.write(`hearsay-notes: the web UI is not built yet (${web}). Run \`pnpm --filter @hearsay/desktop-notes build\`.\n`)
  process.exit(1)
}
const stopSignal = new Promise<string>(resolve => {
  process.once('SIGTERM', () => { resolve('SIGTERM') })
  process.once('SIGINT', () => { resolve('SIGINT') })
})
const args = process.argv.slice(2)
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write('hearsay-notes: collaborative notes on the LAN. Options as `hearsay start`:\n\n')
}
process.exitCode = await main(['start', '--static-dir', web, ...args], {
  out: text => { process.stdout.write(text + '\n') },
  err: text => { process.stderr.write(text + '\n') },
  env: process.env,
  stopSignal,
  onStarted: daemon => { process.stdout.write(`Hearsay Notes: open ${daemon.url}/ in a browser\n`) }
})
setImmediate(() => process.exit(process.exitCode)).unref()
