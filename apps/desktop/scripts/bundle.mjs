// Build the web UI into dist/web: public/* copied, src/web/app.ts bundled with Yjs and y-websocket.
import { build } from 'esbuild'
import { cp } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
await build({
  entryPoints: [join(root, 'src/web/app.ts')],
  outfile: join(root, 'dist/web/app.js'),
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  sourcemap: true,
  minify: true,
  logLevel: 'warning'
})
await cp(join(root, 'public'), join(root, 'dist/web'), { recursive: true })
