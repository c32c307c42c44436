#!/usr/bin/env node
/**
 * The `hearsay` command. In a checkout of the repository (the sources and tsx are there) it runs
 * the sources, so no build is needed and it never runs stale code; an installed package runs
 * the built `dist/cli.js`.
 */
import { existsSync } from 'node:fs'
import { register } from 'node:module'
import { fileURLToPath } from 'node:url'

const source = new URL('../src/cli.ts', import.meta.url)
const built = new URL('../dist/cli.js', import.meta.url)

async function tsx () {
  try {
    return await import('tsx/esm/api')
  } catch {
    return undefined
  }
}

const api = existsSync(fileURLToPath(source)) ? await tsx() : undefined
if (api !== undefined) {
  api.register()
  // resolve the workspace packages to their sources too (the `hearsay-source` export condition);
  // hooks registered later run first, so this one adds the condition before tsx resolves
  register('data:text/javascript,' + encodeURIComponent(
    'export async function resolve (specifier, context, next) {' +
    ' return next(specifier, { ...context, conditions: [...context.conditions, "hearsay-source"] }) }'))
  await import(source.href)
} else if (existsSync(fileURLToPath(built))) {
  await import(built.href)
} else {
  process.stderr.write(`hearsay: ${fileURLToPath(built)} is missing. Run \`pnpm build\` in the repository, or \`pnpm install\` to get tsx and run from the sources.\n`)
  process.exitCode = 1
}
