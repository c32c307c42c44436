/**
 * `pnpm bench`: runs every suite in ./suites, prints each table and writes them all to
 * test/bench/RESULTS.md. `pnpm bench core libp2p` runs only the suites whose file names start with
 * those words and prints them without touching RESULTS.md, which always holds a whole run.
 *
 * A suite exports `run(): Promise<Table[]>`.
 */
import { readdirSync, writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export interface Table { title: string, columns: string[], rows: Array<Array<string | number>>, notes?: string[] }

const here = dirname(fileURLToPath(import.meta.url))
const only = process.argv.slice(2)
const files = readdirSync(join(here, 'suites')).filter(f => f.endsWith('.ts')).sort()
  .filter(f => only.length === 0 || only.some(o => f.startsWith(o)))

function render (t: Table): string {
  const cells = t.rows.map(r => r.map(c => typeof c === 'number' ? (Number.isInteger(c) ? String(c) : c.toFixed(2)) : c))
  const widths = t.columns.map((c, i) => Math.max(c.length, ...cells.map(r => (r[i] ?? '').length)))
  const line = (r: string[]): string => '| ' + r.map((c, i) => c.padEnd(widths[i] as number)).join(' | ') + ' |'
  return [`### ${t.title}`, '', line(t.columns), '| ' + widths.map(w => '-'.repeat(w)).join(' | ') + ' |', ...cells.map(line),
    ...(t.notes !== undefined && t.notes.length > 0 ? ['', ...t.notes.map(n => `- ${n}`)] : [])].join('\n')
}

const out: string[] = [
  '# Benchmark results',
  '',
  `Written by \`pnpm bench\` on ${new Date().toISOString()}: Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB.`,
  ''
]
for (const f of files) {
  const started = Date.now()
  process.stdout.write(`\n== ${f}\n`)
  const mod = await import(join(here, 'suites', f)) as { run: () => Promise<Table[]> }
  for (const t of await mod.run()) {
    const text = render(t)
    process.stdout.write(text + '\n\n')
    out.push(text, '')
  }
  process.stdout.write(`(${f}: ${((Date.now() - started) / 1000).toFixed(1)} s)\n`)
}
if (only.length === 0) {
  const path = join(here, 'RESULTS.md')
  writeFileSync(path, out.join('\n'))
  process.stdout.write(`\nwrote ${path}\n`)
} else {
  process.stdout.write('\n(a partial run: RESULTS.md is written by a full `pnpm bench`)\n')
}
