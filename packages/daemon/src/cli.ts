#!/usr/bin/env node
/** The `hearsay` executable. */
import { main } from './commands.js'

const argv = process.argv.slice(2)
// only `start`, `join` and `watch` run until asked to stop; every other command keeps Ctrl-C's default
const stopSignal = (argv[0] === 'start' || argv[0] === 'join' || argv[0] === 'watch') && !argv.includes('--help') && !argv.includes('-h')
  ? new Promise<string>(resolve => {
    process.once('SIGTERM', () => { resolve('SIGTERM') })
    process.once('SIGINT', () => { resolve('SIGINT') })
  })
  : undefined

const code = await main(argv, {
  out: text => { process.stdout.write(text + '\n') },
  err: text => { process.stderr.write(text + '\n') },
  env: process.env,
  // `pnpm hearsay …` in the repository: print hints the way the user runs the command
  ...(process.env.npm_lifecycle_event === 'hearsay' ? { commandName: 'pnpm hearsay' } : {}),
  ...(stopSignal !== undefined ? { stopSignal } : {})
})
process.exitCode = code
// `start` and `watch` hold sockets until they return; nothing should keep the process alive after
setImmediate(() => process.exit(code)).unref()
