/**
 * The roster on disk: every statement, genesis first, in one metadata record (`hearsay/roster`):
 * `n:varuint statement:bytes{n}`. Bytes read back are not trusted: each statement is decoded
 * strictly, and the genesis is checked again; `trust.ts` checks the rest as it adds them.
 */
import { Reader, Writer } from './bytes.js'
import { MAX_ROSTER_STATEMENTS } from './constants.js'
import type { Log } from './logger.js'
import { StatementKind, decodeStatement, type SignedStatement } from './statements.js'
import type { Storage } from './storage.js'

const ROSTER_KEY = 'hearsay/roster'

export async function saveRoster (storage: Storage, statements: SignedStatement[]): Promise<void> {
  const w = new Writer(statements.reduce((n, s) => n + s.bytes.length + 4, 8))
  w.varuint(statements.length)
  for (const s of statements) w.bytes(s.bytes)
  await storage.setMeta(ROSTER_KEY, w.finish())
}

/** The stored statements, genesis first; undefined when none (or no valid genesis). */
export async function loadRoster (storage: Storage, log: Log, verify: (s: SignedStatement) => boolean): Promise<SignedStatement[] | undefined> {
  const raw = await storage.getMeta(ROSTER_KEY)
  if (raw === undefined) return undefined
  const out: SignedStatement[] = []
  try {
    const r = new Reader(raw)
    const n = r.varuint('statement count', MAX_ROSTER_STATEMENTS)
    for (let i = 0; i < n; i++) out.push(decodeStatement(r.bytes('statement')))
    r.done('roster record')
  } catch (err) {
    log.error('stored roster is damaged (%s): kept the %d statements before the damage; peers give back the rest', (err as Error).message, out.length)
  }
  const genesis = out[0]
  if (genesis === undefined || genesis.kind !== StatementKind.Genesis || !verify(genesis)) {
    if (out.length > 0) log.error('stored roster has no valid genesis: ignored')
    return undefined
  }
  return out
}
