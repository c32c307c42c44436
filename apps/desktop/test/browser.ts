import { execFileSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Page } from 'playwright-core'

export { browserMissing, CHROMIUM, CHROMIUM_ARGS } from '../../../test/browser/chromium.js'

export const WEB_DIR = join(dirname(fileURLToPath(import.meta.url)), '../dist/web')

/** Bundle the web UI (fast) so the test never runs against a stale build. */
export function buildWeb (): void {
  execFileSync(process.execPath, [join(dirname(fileURLToPath(import.meta.url)), '../scripts/bundle.mjs')], { stdio: 'inherit' })
}

/** The note's text as CodeMirror shows it, one line per line, without the other windows' cursor labels. */
export const editorText = async (page: Page): Promise<string> =>
  await page.locator('#editor .cm-line').evaluateAll(lines => lines.map(l => {
    const line = l.cloneNode(true) as HTMLElement
    for (const caret of line.querySelectorAll('.cm-ySelectionCaret')) caret.remove()
    return (line.textContent ?? '').replace(/\u2060/g, '')
  }).join('\n'))

/** Type at the end of the note. */
export async function typeAtEnd (page: Page, text: string): Promise<void> {
  await page.locator('#editor .cm-content').click()
  await page.keyboard.press('Control+End')
  await page.keyboard.type(text)
}
