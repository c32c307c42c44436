/**
 * A document's content as JSON, for `hearsay get` and `watch`. Yjs only knows the type of a root
 * shared type once someone fetched it; for types only seen in updates, this infers it from the
 * content (keys → map, strings → text, anything else → array).
 */
import * as Y from 'yjs'

export function docToJSON (doc: Y.Doc): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [name, type] of doc.share) {
    out[name] = typeToJSON(doc, name, type)
  }
  return out
}

function typeToJSON (doc: Y.Doc, name: string, type: Y.AbstractType<any>): unknown {
  if (type instanceof Y.Map || type instanceof Y.Text || type instanceof Y.Array || type instanceof Y.XmlFragment) {
    return type.toJSON()
  }
  // a placeholder: decide from its content, then fetch it with that type
  if (type._map.size > 0 && type._start === null) return doc.getMap(name).toJSON()
  let item = type._start
  let isText = item !== null
  while (item !== null) {
    if (!item.deleted && !(item.content instanceof Y.ContentString) && !(item.content instanceof Y.ContentFormat)) isText = false
    item = item.right
  }
  return isText ? doc.getText(name).toJSON() : doc.getArray(name).toJSON()
}

/** Parse a CLI value: JSON when it parses (`42`, `true`, `{"a":1}`), else the plain string. */
export function parseValue (text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}
