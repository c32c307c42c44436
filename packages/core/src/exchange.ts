/**
 * One anti-entropy exchange between two nodes, seen from one side.
 *
 * The initiator opens with the digest root. Each side answers every range the other sent:
 * equal ranges are dropped; a range the other side lacks entirely is answered with the documents
 * themselves (when this side may send); small ranges are answered with their document list
 * (id, fingerprint, state vector); larger ones are split into their 16 children. A side that
 * receives a list knows exactly which documents differ and sends Yjs diffs against the listed
 * state vectors, or requests diffs with its own state vector. Requests are answered with diffs.
 *
 * The mode decides which way documents may travel: push (initiator → responder), pull
 * (responder → initiator), push-pull (both). Messages alternate; a message with no items ends
 * the exchange. With equal digests that is one small message each way, whatever the number of
 * documents.
 *
 * Documents not in memory are read through `Documents.stateVector`/`diff`, which answer from
 * stored updates without loading them; any document loaded to serve the exchange is released as
 * it goes (`evictIdle`), so the node stays within `maxLoadedDocs`. A document whose stored data
 * is corrupt (quarantined) is skipped: listed with its last stored fingerprint only (so a peer
 * with the same state does not resend it), not sent, updates for it dropped. The rest of the
 * exchange goes on.
 */
import * as Y from 'yjs'
import { DIGEST_LEAF_SIZE, MAX_UPDATE_BYTES } from './constants.js'
import { equalBytes } from './bytes.js'
import { ROOT_PREFIX } from './digest.js'
import type { DigestTree } from './digest.js'
import type { Scope } from './digest-views.js'
import type { Documents } from './documents.js'
import { validateUpdate } from './updates.js'
import { InvalidUpdateError, ProtocolError, ReceiveLimitError, isCorruption } from './errors.js'
import { FINGERPRINT_BYTES, ItemKind, MAX_PREFIX_DEPTH, type AntiEntropyMode, type ListedDoc, type Prefix, type SyncItem } from './protocol.js'
import { ReceiveBudget } from './receive-limits.js'

export type Role = 'initiator' | 'responder'

export interface SyncReport {
  /** Bytes of this exchange's frames sent by this node. */
  bytesSent: number
  /** Bytes of this exchange's frames received by this node. */
  bytesReceived: number
  /** Request/answer pairs the exchange took. */
  roundTrips: number
  /** Documents this node sent a diff or a whole state for. */
  docsSent: number
  /** Documents this node received a diff or a whole state for. */
  docsReceived: number
  /** Wall time of the exchange in ms. */
  durationMs: number
}

/** Where an exchange puts the items of its next message; the session turns them into frames. */
export type ItemSink = (item: SyncItem) => Promise<void>

const EMPTY_SV = Y.encodeStateVector(new Y.Doc())
const NO_FINGERPRINT = new Uint8Array(FINGERPRINT_BYTES)

/** What an exchange may hold, create, send and take on behalf of its peer. */
export interface ExchangeLimits {
  /** Node-wide bytes of exchange frames waiting and half-received updates; past it the exchange is aborted (`ReceiveLimitError`). */
  budget: ReceiveBudget
  /** Whether the peer may make this node create document `docId` with `bytes`; false refuses it. */
  admit(docId: string, bytes: number): boolean
  /** What the roster lets this node share with the peer (digest-views.ts); undefined: everything. */
  readonly scope?: Scope
  /** An update to `docId` the peer may not write was refused. */
  refused?(docId: string): void
}

const UNLIMITED: ExchangeLimits = { budget: new ReceiveBudget(Infinity), admit: () => true }

export class Exchange {
  readonly canSend: boolean
  readonly canReceive: boolean
  readonly report: SyncReport = { bytesSent: 0, bytesReceived: 0, roundTrips: 0, docsSent: 0, docsReceived: 0, durationMs: 0 }
  /** Set when the peer gave up on the exchange. */
  abortReason: string | undefined
  /** Messages received and sent so far. */
  messages = 0
  private readonly chunks = new Map<string, { parts: Uint8Array[], bytes: number }>()
  /** Bytes in `chunks`, taken from the node's receive budget. */
  private chunkBytes = 0
  /** Set by `release()`: the exchange ended; late work takes nothing more. */
  private released = false
  /** New documents the peer sent that the creation quota refused. */
  refusedDocs = 0
  private readonly sentDocs = new Set<string>()
  private readonly receivedDocs = new Set<string>()
  /** Documents to push after the peer's answer arrives, if we still differ from what it listed. */
  private readonly pushBack = new Map<string, { stateVector: Uint8Array, fingerprint: Uint8Array }>()

  constructor (
    readonly id: number,
    readonly role: Role,
    readonly mode: AntiEntropyMode,
    private readonly docs: Documents,
    /** Transaction origin for applied updates (the session), so they are not echoed back. */
    private readonly origin: unknown,
    /** Largest update payload one item may carry; longer updates travel in chunks. */
    private readonly maxChunk: number,
    /** What the peer may make this node hold and create (receive-limits.ts). */
    private readonly limits: ExchangeLimits = UNLIMITED
  ) {
    this.canSend = role === 'initiator' ? mode !== 'pull' : mode !== 'push'
    this.canReceive = role === 'initiator' ? mode !== 'push' : mode !== 'pull'
    const scope = limits.scope
    this.tree = scope?.tree ?? docs.tree
    this.sends = scope === undefined || scope.whole ? () => true : d => scope.sends(d)
    this.takes = scope === undefined || scope.whole ? () => true : d => scope.takes(d)
  }

  /** The digest this exchange compares: what the roster lets the two sides share. */
  private readonly tree: DigestTree
  private readonly sends: (docId: string) => boolean
  private readonly takes: (docId: string) => boolean

  /** The initiator's opening item: the digest root. */
  opening (): SyncItem {
    this.docs.refresh()
    const r = this.tree.range(ROOT_PREFIX)
    return { kind: ItemKind.RangeFingerprint, prefix: ROOT_PREFIX, fingerprint: r.hash, count: r.count }
  }

  /**
   * Check every item of an incoming frame before any is acted on, so that a frame this side
   * rejects changes no document: the directions the mode allows, every state vector, and every
   * update the frame completes (with the chunks held from earlier frames). Throws `ProtocolError`
   * or `InvalidUpdateError`.
   */
  check (items: SyncItem[]): void {
    const held = new Map<string, { parts: Uint8Array[], bytes: number }>()
    // documents half received as of the item being checked (a sender finishes one before the next)
    const open = new Set(this.chunks.keys())
    for (const item of items) {
      switch (item.kind) {
        case ItemKind.RangeList:
          for (const d of item.docs) decodeStateVector(d.stateVector, d.docId)
          break
        case ItemKind.DocRequest:
          if (!this.canSend) throw new ProtocolError(`peer requested document "${item.docId}" in a ${this.mode} exchange where this side does not send`)
          decodeStateVector(item.stateVector, item.docId)
          break
        case ItemKind.DocUpdate: {
          if (!this.canReceive) throw new ProtocolError(`peer sent document "${item.docId}" in a ${this.mode} exchange where this side does not receive`)
          // refused whole in onUpdate, never held or applied
          if (!this.takes(item.docId)) break
          const before = held.get(item.docId) ?? this.chunks.get(item.docId)
          if (before === undefined && !item.partial) {
            validateUpdate(item.docId, item.update)
            break
          }
          for (const other of open) {
            if (other !== item.docId) throw new ProtocolError(`chunks of "${item.docId}" began while "${other}" was half sent`)
          }
          const p = { parts: [...(before?.parts ?? []), item.update], bytes: (before?.bytes ?? 0) + item.update.length }
          if (p.bytes > MAX_UPDATE_BYTES) throw new ProtocolError(`update for "${item.docId}" exceeds ${MAX_UPDATE_BYTES} bytes`)
          held.set(item.docId, p)
          open.add(item.docId)
          if (item.partial) break
          held.delete(item.docId)
          open.delete(item.docId)
          validateUpdate(item.docId, concat(p.parts, p.bytes))
          break
        }
        default:
      }
    }
  }

  /** Answer the items of one incoming frame, which `check` accepted. */
  async handle (items: SyncItem[], out: ItemSink): Promise<void> {
    this.docs.refresh()
    for (const item of items) {
      switch (item.kind) {
        case ItemKind.RangeFingerprint: await this.onRange(item.prefix, item.fingerprint, item.count, out); break
        case ItemKind.RangeList: await this.onList(item.prefix, item.docs, out); break
        case ItemKind.DocRequest: await this.onRequest(item.docId, item.stateVector, item.fingerprint, out); break
        case ItemKind.DocUpdate: await this.onUpdate(item.docId, item.update, item.partial, out); break
        case ItemKind.Abort:
          this.abortReason = item.reason
          return
      }
    }
  }

  private async onRange (prefix: Prefix, theirHash: Uint8Array, theirCount: number, out: ItemSink): Promise<void> {
    const mine = this.tree.range(prefix)
    if (mine.count === theirCount && equalBytes(mine.hash, theirHash)) return
    if (theirCount === 0) {
      // they have nothing here: send everything we have, if we may
      if (this.canSend) for (const e of this.tree.list(prefix)) await this.sendDoc(e.docId, undefined, out)
      return
    }
    if (mine.count === 0) {
      // we have nothing here: say so, and they send theirs if they may
      if (this.canReceive) await out({ kind: ItemKind.RangeList, prefix, docs: [] })
      return
    }
    // a list is sent only for a small range of ours, so it always fits a frame; when we hold many
    // documents here and they hold few, splitting lets them answer each child with their list
    if (mine.count <= DIGEST_LEAF_SIZE || prefix.depth >= MAX_PREFIX_DEPTH) {
      await out({ kind: ItemKind.RangeList, prefix, docs: await this.listed(prefix) })
      return
    }
    for (const c of this.tree.children(prefix)) {
      await out({ kind: ItemKind.RangeFingerprint, prefix: c.prefix, fingerprint: c.hash, count: c.count })
    }
  }

  private async listed (prefix: Prefix): Promise<ListedDoc[]> {
    const out: ListedDoc[] = []
    for (const e of this.tree.list(prefix)) {
      // a quarantined document is listed with its last stored fingerprint, so a peer holding the
      // same state leaves it alone; one that differs sends its copy, which is dropped here
      const sv = await this.stateVectorOf(e.docId) ?? EMPTY_SV
      out.push({ docId: e.docId, fingerprint: e.fingerprint, stateVector: sv })
    }
    return out
  }

  /** Our state vector of a document; undefined when it is quarantined (skipped). */
  private async stateVectorOf (docId: string): Promise<Uint8Array | undefined> {
    try {
      return await this.docs.stateVector(docId)
    } catch (err) {
      if (isCorruption(err)) return undefined
      throw err
    } finally {
      this.docs.evictIdle()
    }
  }

  private async onList (prefix: Prefix, theirs: ListedDoc[], out: ItemSink): Promise<void> {
    const mine = new Map(this.tree.list(prefix).map(e => [e.docId, e]))
    for (const t of theirs) {
      const m = mine.get(t.docId)
      mine.delete(t.docId)
      if (m === undefined) {
        if (this.canReceive && this.takes(t.docId)) await out({ kind: ItemKind.DocRequest, docId: t.docId, stateVector: EMPTY_SV, fingerprint: NO_FINGERPRINT })
        continue
      }
      if (equalBytes(m.fingerprint, t.fingerprint)) continue
      const mySv = await this.stateVectorOf(t.docId)
      if (mySv === undefined) continue
      // The side that is ahead pushes first, and the other only answers if the push left it
      // different; the side that is behind asks first and pushes back only if still different
      // after applying the answer. So a document that changed on one side travels one way only.
      const theyAreAhead = dominates(t.stateVector, mySv, t.docId)
      if (this.canSend && (!this.canReceive || !theyAreAhead)) await this.sendDoc(t.docId, t.stateVector, out)
      if (this.canReceive && this.takes(t.docId)) {
        await out({ kind: ItemKind.DocRequest, docId: t.docId, stateVector: mySv, fingerprint: m.fingerprint })
        if (this.canSend && theyAreAhead) this.pushBack.set(t.docId, { stateVector: t.stateVector, fingerprint: t.fingerprint })
      }
    }
    // ours only
    if (this.canSend) for (const id of mine.keys()) await this.sendDoc(id, undefined, out)
  }

  private async onRequest (docId: string, stateVector: Uint8Array, theirFingerprint: Uint8Array, out: ItemSink): Promise<void> {
    const mine = this.docs.fingerprint(docId)
    // equal fingerprints: they already hold all we have (typically because they just sent us their diff)
    if (mine === undefined || equalBytes(mine, theirFingerprint)) return
    // answered even when empty: the requester may be waiting for it to push back
    await this.sendDoc(docId, stateVector, out, true)
  }

  private async sendDoc (docId: string, stateVector: Uint8Array | undefined, out: ItemSink, evenIfEmpty = false): Promise<void> {
    // the peer may not read it, or we may not write it (then the peer would refuse it)
    if (!this.sends(docId)) return
    let update: Uint8Array
    try {
      update = await this.docs.diff(docId, stateVector)
    } catch (err) {
      if (isCorruption(err)) return
      if (err instanceof InvalidUpdateError) throw new ProtocolError(`peer sent a malformed state vector for "${docId}"`, { cause: err })
      throw err
    } finally {
      this.docs.evictIdle()
    }
    const empty = isEmptyUpdate(update)
    if (empty && !evenIfEmpty) return
    if (!empty && !this.sentDocs.has(docId)) {
      this.sentDocs.add(docId)
      this.report.docsSent++
    }
    for (let off = 0; off < update.length; off += this.maxChunk) {
      const end = Math.min(update.length, off + this.maxChunk)
      await out({ kind: ItemKind.DocUpdate, docId, update: update.subarray(off, end), partial: end < update.length })
    }
  }

  private async onUpdate (docId: string, part: Uint8Array, partial: boolean, out: ItemSink): Promise<void> {
    if (this.released) return
    if (!this.takes(docId)) {
      // the peer may not write it: refused before anything is held or touched
      if (!partial) this.limits.refused?.(docId)
      return
    }
    let update = part
    const pending = this.chunks.get(docId)
    if (pending !== undefined || partial) {
      const p = pending ?? { parts: [], bytes: 0 }
      if (p.bytes + part.length > MAX_UPDATE_BYTES) throw new ProtocolError(`update for "${docId}" exceeds ${MAX_UPDATE_BYTES} bytes`)
      if (!this.limits.budget.take(part.length)) {
        throw new ReceiveLimitError(`exchange frames waiting and half-received updates would pass the node's ${this.limits.budget.limit} bytes (receiveBufferBytes)`)
      }
      p.parts.push(part.slice())
      p.bytes += part.length
      this.chunkBytes += part.length
      this.chunks.set(docId, p)
      if (partial) return
      this.chunks.delete(docId)
      this.chunkBytes -= p.bytes
      this.limits.budget.give(p.bytes)
      update = concat(p.parts, p.bytes)
    }
    if (!this.docs.has(docId) && !this.limits.admit(docId, update.length)) {
      // not created: the peer keeps it, and a later exchange brings it once the quota refilled
      this.refusedDocs++
      return
    }
    try {
      await this.docs.applyUpdate(docId, update, this.origin, true)
    } catch (err) {
      // our copy is quarantined: drop the update, the rest of the exchange goes on
      if (isCorruption(err)) return
      throw err
    } finally {
      this.docs.evictIdle()
    }
    await this.docs.relieve()
    if (!isEmptyUpdate(update) && !this.receivedDocs.has(docId)) {
      this.receivedDocs.add(docId)
      this.report.docsReceived++
    }
    const back = this.pushBack.get(docId)
    if (back !== undefined) {
      this.pushBack.delete(docId)
      const mine = this.docs.fingerprint(docId)
      if (mine !== undefined && !equalBytes(mine, back.fingerprint)) await this.sendDoc(docId, back.stateVector, out)
    }
  }

  /** Whether `release()` ended the exchange. */
  get ended (): boolean {
    return this.released
  }

  /** The exchange ended: free what it holds, and take nothing more. */
  release (): void {
    this.released = true
    this.limits.budget.give(this.chunkBytes)
    this.chunkBytes = 0
    this.chunks.clear()
  }

  /** Whether a message ended with a document still half received. */
  get incomplete (): boolean {
    return this.chunks.size > 0
  }
}


/** An update with no structs and an empty delete set (what `encodeStateAsUpdate` gives when there is nothing to send). */
function isEmptyUpdate (update: Uint8Array): boolean {
  return update.length === 2 && update[0] === 0 && update[1] === 0
}

/** Whether state vector `a` is ahead of `b`: at least as far for every client, further for one. */
function dominates (a: Uint8Array, b: Uint8Array, docId: string): boolean {
  const sa = decodeStateVector(a, docId)
  const sb = decodeStateVector(b, docId)
  let further = false
  for (const [client, clock] of sb) if ((sa.get(client) ?? 0) < clock) return false
  for (const [client, clock] of sa) if (clock > (sb.get(client) ?? 0)) further = true
  return further
}

function concat (parts: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total)
  let off = 0
  for (const p of parts) {
    out.set(p, off)
    off += p.length
  }
  return out
}

function decodeStateVector (sv: Uint8Array, docId: string): Map<number, number> {
  try {
    return Y.decodeStateVector(sv)
  } catch (err) {
    throw new ProtocolError(`peer sent a malformed state vector for "${docId}"`, { cause: err })
  }
}
