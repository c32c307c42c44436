/**
 * Running the daemon in the foreground (`hearsay start`, `hearsay join`): refuse a second daemon
 * of the same data directory, start, write `daemon.json`, serve until the stop signal, flush.
 */
import type { Logger, TrustOptions } from '@hearsay/core'
import { writerLogger } from '@hearsay/core'
import { request } from './client.js'
import type { CliIO } from './commands.js'
import { endpointUrl } from './config.js'
import type { LoadedConfig } from './config.js'
import { startDaemon } from './daemon.js'
import type { Daemon } from './daemon.js'
import { createDaemonNode } from './network.js'
import { readRuntime, removeRuntime, writeRuntime } from './runtime.js'

export interface ServeOptions {
  /** Roster statements to add at start (see `createDaemonNode`). */
  trust?: Omit<TrustOptions, 'crypto' | 'signer'>
  /** Runs once the daemon serves; a rejection stops it (and `serve` rethrows). */
  afterStart?: (daemon: Daemon) => Promise<void>
}

/** Serve until `io.stopSignal`; returns the exit code. */
export async function serve (loaded: LoadedConfig, io: CliIO, options: ServeOptions = {}): Promise<number> {
  const { config } = loaded
  const logger = writerLogger({ level: config.logLevel, write: line => { io.err(line) } })
  await refuseSecondDaemon(config.dataDir)
  const daemon = await startFromConfig(loaded, logger, options.trust)
  try {
    await writeRuntime(config.dataDir, { pid: process.pid, id: daemon.node.id, url: endpointUrl({ httpHost: config.httpHost, httpPort: daemon.port }), startedAt: Date.now() })
    io.err(`hearsay: node ${daemon.node.id} serving ${daemon.url} (ws://${daemon.url.slice('http://'.length)}/<docId>)` +
      (config.staticDir !== undefined ? `; the web app in ${config.staticDir} at ${daemon.url}/` : ''))
    await options.afterStart?.(daemon)
    await io.onStarted?.(daemon)
  } catch (err) {
    await daemon.close()
    await removeRuntime(config.dataDir)
    throw err
  }
  const signal = await (io.stopSignal ?? new Promise<string>(() => {}))
  io.err(`hearsay: ${signal}: flushing and stopping`)
  await io.onStopping?.()
  await daemon.close()
  await removeRuntime(config.dataDir)
  io.err('hearsay: stopped')
  return 0
}

/** Another daemon of this data directory is running. */
export class AlreadyRunningError extends Error {
  static readonly code = 'AlreadyRunningError'
  override readonly name = 'AlreadyRunningError'
}

/**
 * Refuse to start when `daemon.json` names a daemon of this data directory that still answers as
 * this node; a file whose process is gone, or whose pid now belongs to something else, is stale.
 */
async function refuseSecondDaemon (dataDir: string): Promise<void> {
  const running = await readRuntime(dataDir).catch(() => undefined)
  if (running === undefined || running.stale || running.pid === process.pid) return
  const answered = await request<{ id: string }>(running.url, '/status').catch(() => undefined)
  if (answered?.id !== running.id) return
  throw new AlreadyRunningError(`a daemon already runs for ${dataDir}: node ${running.id}, pid ${running.pid}, at ${running.url}. Stop it first (kill ${running.pid}), or start this one with another --data-dir.`)
}

/** Start a daemon from a loaded configuration. */
export async function startFromConfig (loaded: LoadedConfig, logger: Logger, trust?: Omit<TrustOptions, 'crypto' | 'signer'>): Promise<Daemon> {
  const { config } = loaded
  const { node, transport, swarmKey } = await createDaemonNode(config, logger, trust)
  return await startDaemon({
    node,
    ...(swarmKey !== undefined ? { swarmKey } : {}),
    host: config.httpHost,
    port: config.httpPort,
    allowOrigins: config.allowOrigins,
    wsMaxBufferedBytes: config.wsMaxBufferedBytes,
    wsMaxMessageBytes: config.wsMaxMessageBytes,
    transport,
    logger,
    ...(config.staticDir !== undefined ? { staticDir: config.staticDir } : {}),
    ...(config.name !== undefined ? { name: config.name } : {})
  })
}

