/// <reference lib="dom" />
/**
 * The note editor: CodeMirror 6 bound to the note's `Y.Text` by `y-codemirror.next`, with the
 * other windows' cursors and selections (names and colours from y-websocket awareness), undo of
 * one's own edits only, wrapped lines, and the first line styled as the note's title.
 */
import { defaultKeymap, indentWithTab } from '@codemirror/commands'
import { EditorState } from '@codemirror/state'
import { Decoration, drawSelection, EditorView, keymap, placeholder, ViewPlugin } from '@codemirror/view'
import type { DecorationSet } from '@codemirror/view'
import { yCollab, yUndoManagerKeymap } from 'y-codemirror.next'
import type { Awareness } from 'y-protocols/awareness'
import * as Y from 'yjs'

/** The first line is the note's title. */
const titleLine = ViewPlugin.fromClass(class {
  decorations: DecorationSet = Decoration.set([Decoration.line({ class: 'cm-title' }).range(0)])
}, { decorations: v => v.decorations })

const theme = EditorView.theme({
  '&': { height: '100%', fontSize: '16px' },
  '&.cm-focused': { outline: 'none' },
  '.cm-scroller': { fontFamily: 'inherit', lineHeight: '1.6', padding: '1.25em 0' },
  '.cm-content': { padding: '0 clamp(1em, 4vw, 3em)', maxWidth: '46em', caretColor: 'var(--accent)' },
  '.cm-title': { fontSize: '1.45em', fontWeight: '650', lineHeight: '1.35', paddingBottom: '.3em' },
  // names on the other windows' cursors stay visible, not only on hover
  '.cm-ySelectionInfo': { opacity: '1', top: '-1.3em', fontSize: '11px', fontFamily: 'system-ui, sans-serif', fontWeight: '600', padding: '1px 4px', borderRadius: '3px 3px 3px 0', color: '#fff', maxWidth: '12em', overflow: 'hidden', textOverflow: 'ellipsis' },
  '.cm-ySelectionCaret': { position: 'relative' }
})

export function createEditor (parent: HTMLElement, text: Y.Text, awareness: Awareness): EditorView {
  const undoManager = new Y.UndoManager(text)
  return new EditorView({
    parent,
    state: EditorState.create({
      doc: text.toString(),
      extensions: [
        keymap.of([...yUndoManagerKeymap, ...defaultKeymap, indentWithTab]),
        drawSelection(),
        EditorView.lineWrapping,
        EditorView.contentAttributes.of({ 'aria-label': 'Note', spellcheck: 'true' }),
        placeholder('Title\n\nWrite here. Everyone with this note open sees it as you type.'),
        titleLine,
        theme,
        yCollab(text, awareness, { undoManager })
      ]
    })
  })
}

/** Eight colours that read well under white text, picked by name so a device keeps its colour. */
const COLOURS = ['#1e88e5', '#43a047', '#e53935', '#8e24aa', '#ef6c00', '#00897b', '#d81b60', '#5e35b1']

export function colourOf (name: string): { color: string, colorLight: string } {
  let h = 0
  for (const ch of name) h = (h * 31 + ch.codePointAt(0)!) >>> 0
  const color = COLOURS[h % COLOURS.length]!
  return { color, colorLight: `${color}33` }
}
