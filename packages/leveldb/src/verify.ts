/**
 * The integrity check: every record of the store read from one snapshot and checked against its
 * checksum, and every head against the update records it lists.
 */
import type { Db } from './database.js'
import { wrapIo } from './io-errors.js'
import { TAG_HEAD, TAG_UPDATE, checked, decodeHead, decodeUtf8, seqOf, unseal } from './layout.js'

export interface CorruptionReport {
  /** The document concerned, or undefined for metadata and unreadable keys. */
  docId: string | undefined
  message: string
}

export interface VerifyReport {
  /** Documents with a readable head record. */
  documents: number
  /** Update records checked. */
  records: number
  /** Everything that failed a check. Empty when the store is sound. */
  corrupt: CorruptionReport[]
}

export async function verifyStore (path: string, db: Db): Promise<VerifyReport> {
  const snapshot = db.snapshot()
  const corrupt: CorruptionReport[] = []
  const counted = new Map<string, number>()
  const heads = new Map<string, number>()
  let records = 0
  try {
    for await (const [k, v] of db.iterator({ gte: new Uint8Array([TAG_UPDATE]), lt: new Uint8Array([TAG_UPDATE + 1]), snapshot })) {
      records++
      const len = k.length >= 3 ? ((k[1] as number) << 8) | (k[2] as number) : -1
      const docId = len >= 0 && k.length === 3 + len + 8 ? decodeUtf8(k.subarray(3, 3 + len)) : undefined
      if (docId === undefined) {
        corrupt.push({ docId: undefined, message: 'an update record has a malformed key' })
        continue
      }
      counted.set(docId, (counted.get(docId) ?? 0) + 1)
      if (checked(k, v) === undefined) corrupt.push({ docId, message: `update record ${seqOf(k)} failed its checksum` })
    }
    for await (const [k, v] of db.iterator({ gte: new Uint8Array([TAG_HEAD]), lt: new Uint8Array([TAG_HEAD + 1]), snapshot })) {
      const docId = decodeUtf8(k.subarray(1))
      const body = unseal(k, v)
      const head = body === undefined ? undefined : decodeHead(body)
      if (docId === undefined || head === undefined) {
        corrupt.push({ docId, message: 'head record (fingerprint) is corrupt' })
        if (docId !== undefined) heads.set(docId, -1)
        continue
      }
      heads.set(docId, head.records)
    }
  } catch (err) {
    throw wrapIo(path, err, 'verify')
  } finally {
    await snapshot.close()
  }
  for (const [docId, n] of heads) {
    const found = counted.get(docId) ?? 0
    if (n >= 0 && n !== found) corrupt.push({ docId, message: `head lists ${n} update records but ${found} were found` })
  }
  for (const docId of counted.keys()) {
    if (!heads.has(docId)) corrupt.push({ docId, message: 'update records without a head record' })
  }
  return { documents: [...heads.values()].filter(n => n >= 0).length, records, corrupt }
}
