/**
 * Where a running daemon listens: `<dataDir>/daemon.json` holds its pid, node id and endpoint.
 * `start` writes it atomically once the endpoint is up and removes it on a clean stop; a file
 * left by a daemon that died is recognised by its pid no longer running. Clients read it to reach
 * the daemon of the data directory they were given, whatever port it ended up on.
 */
import { open, readFile, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { RUNTIME_FILE, RUNTIME_FILE_MAX_BYTES } from './constants.js'

export interface RuntimeInfo {
  /** Process id of the daemon. */
  pid: number
  /** The daemon's node id (its peer id). */
  id: string
  /** `http://host:port` of its endpoint, as reachable from this machine. */
  url: string
  /** When it started, ms since the epoch. */
  startedAt: number
}

/** `daemon.json` exists but does not hold what a daemon writes. */
export class RuntimeFileError extends Error {
  static readonly code = 'RuntimeFileError'
  override readonly name = 'RuntimeFileError'
}

export const runtimeFile = (dataDir: string): string => join(dataDir, RUNTIME_FILE)

/** Write `daemon.json` atomically (a reader never sees half of it). */
export async function writeRuntime (dataDir: string, info: RuntimeInfo): Promise<void> {
  const file = runtimeFile(dataDir)
  const tmp = `${file}.${process.pid}.tmp`
  const fh = await open(tmp, 'w', 0o600)
  try {
    await fh.writeFile(JSON.stringify(info, null, 2) + '\n')
    await fh.sync()
  } finally {
    await fh.close()
  }
  await rename(tmp, file)
}

/** Remove `daemon.json` if it is this process's (another daemon may have replaced it). */
export async function removeRuntime (dataDir: string, pid = process.pid): Promise<void> {
  const info = await readRuntime(dataDir).catch(() => undefined)
  if (info === undefined || info.pid === pid) await rm(runtimeFile(dataDir), { force: true })
}

/** Whether a process with this pid is running (it may belong to another user). */
export function isRunning (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * What `daemon.json` says, checked field by field; undefined when there is none. `stale` is set
 * when its process is gone (the daemon was killed, or the machine restarted).
 */
export async function readRuntime (dataDir: string): Promise<(RuntimeInfo & { stale: boolean }) | undefined> {
  const file = runtimeFile(dataDir)
  let bytes: Buffer
  try {
    const fh = await open(file, 'r')
    try {
      const { size } = await fh.stat()
      if (size > RUNTIME_FILE_MAX_BYTES) throw new RuntimeFileError(`${file} is ${size} bytes, more than a daemon writes (${RUNTIME_FILE_MAX_BYTES}); delete it if no daemon runs there.`)
      bytes = await readFile(fh)
    } finally {
      await fh.close()
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  let v: unknown
  try {
    v = JSON.parse(bytes.subarray(0, RUNTIME_FILE_MAX_BYTES).toString('utf8'))
  } catch {
    throw new RuntimeFileError(`${file} is not JSON; delete it if no daemon runs there.`)
  }
  const o = v as Partial<Record<keyof RuntimeInfo, unknown>> | null
  const ok = o !== null && typeof o === 'object' &&
    Number.isSafeInteger(o.pid) && (o.pid as number) > 0 &&
    typeof o.id === 'string' && o.id.length > 0 && o.id.length <= 200 &&
    typeof o.url === 'string' && /^http:\/\/[^/\s]{1,300}$/.test(o.url) &&
    typeof o.startedAt === 'number' && Number.isFinite(o.startedAt)
  if (!ok) throw new RuntimeFileError(`${file} does not hold a daemon's pid, id and url; delete it if no daemon runs there.`)
  const info = { pid: o.pid as number, id: o.id as string, url: o.url as string, startedAt: o.startedAt as number }
  return { ...info, stale: !isRunning(info.pid) }
}
