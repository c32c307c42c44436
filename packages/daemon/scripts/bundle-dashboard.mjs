// Build the dashboard into dist/dashboard: dashboard/app.ts bundled, the page, style and icon copied.
import { build } from 'esbuild'
import { copyFile, mkdir } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const out = join(root, 'dist/dashboard')
await mkdir(out, { recursive: true })
await build({
  entryPoints: [join(root, 'dashboard/app.ts')],
  outfile: join(out, 'app.js'),
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  logLevel: 'warning'
})
for (const file of ['index.html', 'style.css', 'favicon.svg']) await copyFile(join(root, 'dashboard', file), join(out, file))
