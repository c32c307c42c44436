#!/usr/bin/env node
/** The `hearsay` executable. */
import { main } from './commands.js'

const stopSignal = new Promise<string>(resolve => {
  process.once('SIGTERM', () => { resolve('SIGTERM') })
  process.once('SIGINT', () => { resolve('SIGINT') })
})

const code = await main(process.argv.slice(2), {
  out: text => { process.stdout.write(text + '\n') },
  err: text => { process.stderr.write(text + '\n') },
  env: process.env,
  stopSignal
})
process.exitCode = code
// `start` and `watch` hold sockets until they return; nothing should keep the process alive after
setImmediate(() => process.exit(code)).unref()
