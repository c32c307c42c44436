/// <reference lib="dom" />
/**
 * Two-way binding of a `<textarea>` to a Y.Text. Local input becomes the smallest delete/insert
 * (common prefix and suffix kept); remote changes are applied to the textarea with the caret and
 * selection moved along with the text around them.
 */
import * as Y from 'yjs'

export function bindTextarea (ytext: Y.Text, textarea: HTMLTextAreaElement): () => void {
  const origin = { binding: 'textarea' }
  textarea.value = ytext.toString()

  const onInput = (): void => {
    const before = ytext.toString()
    const after = textarea.value
    let start = 0
    while (start < before.length && start < after.length && before[start] === after[start]) start++
    let endBefore = before.length
    let endAfter = after.length
    while (endBefore > start && endAfter > start && before[endBefore - 1] === after[endAfter - 1]) {
      endBefore--
      endAfter--
    }
    if (endBefore === start && endAfter === start) return
    ytext.doc!.transact(() => {
      if (endBefore > start) ytext.delete(start, endBefore - start)
      if (endAfter > start) ytext.insert(start, after.slice(start, endAfter))
    }, origin)
  }

  const onChange = (event: Y.YTextEvent, tr: Y.Transaction): void => {
    if (tr.origin === origin) return
    let selStart = textarea.selectionStart
    let selEnd = textarea.selectionEnd
    let index = 0
    for (const op of event.delta) {
      if (op.retain !== undefined) {
        index += op.retain
      } else if (typeof op.insert === 'string') {
        const n = op.insert.length
        if (index < selStart) selStart += n
        if (index < selEnd) selEnd += n
        index += n
      } else if (op.delete !== undefined) {
        const n = op.delete
        if (index < selStart) selStart -= Math.min(n, selStart - index)
        if (index < selEnd) selEnd -= Math.min(n, selEnd - index)
      }
    }
    textarea.value = ytext.toString()
    textarea.setSelectionRange(selStart, selEnd)
  }

  textarea.addEventListener('input', onInput)
  ytext.observe(onChange)
  return () => {
    textarea.removeEventListener('input', onInput)
    ytext.unobserve(onChange)
  }
}
