/**
 * A loaded document's changes as updates: one update per run of transactions with the same
 * origin, encoded when the run is taken, instead of one Yjs `update` event per transaction.
 *
 * With an `update` listener, Yjs encodes every transaction as an update while it commits: for
 * one-character edits that costs more than the edit itself, and every one of those updates then
 * has to be queued, stored, merged and sent. Here a transaction costs a glance at its state and
 * delete set. When the run is taken (by `Documents.takeChanges()`, on the microtask after the
 * transaction or earlier when something reads the write queue, or at once when it reaches
 * `CHANGE_RUN_MAX_TRANSACTIONS` transactions or `CHANGE_RUN_MAX_CLOCKS` new clock ticks), it is
 * encoded once: the structs added since the run began, and the deletes of its
 * transactions merged. That is the same update `Y.mergeUpdates` makes of the run's per-transaction
 * updates (tested against it), without ever making them.
 *
 * A run ends when a transaction with another origin begins: each update keeps the origin of all
 * it holds, so updates from a peer are never taken for local ones, nor the reverse. That holds
 * for a transaction started by an observer of another one too (an app answering a peer's edit):
 * the content of the one being cleaned up is in the store already, so it ends the run there,
 * before the new one adds anything. Transactions whose origin is `skip` (replays from storage)
 * start a new run and deliver nothing.
 *
 * The encoding reads the struct store as Yjs's own `writeStructsFromTransaction` and
 * `writeDeleteSet` do, through the structs' own `write` (the V1 update format).
 */
import * as encoding from 'lib0/encoding'
import * as Y from 'yjs'
import { CHANGE_RUN_MAX_CLOCKS, CHANGE_RUN_MAX_TRANSACTIONS } from './constants.js'

type DeleteSet = Y.Transaction['deleteSet']
type Vector = Map<number, number>

export interface DocChangesDeps {
  /** One update of the document, holding a run of transactions of `origin`. */
  deliver: (update: Uint8Array, origin: unknown) => void
  /** A transaction changed the document: its run waits to be taken. */
  waiting: () => void
  /** Transactions of this origin are not delivered. */
  skip: (origin: unknown) => boolean
}

export class DocChanges {
  /** The state where the run began. */
  private since: Vector
  private deletes: DeleteSet[] = []
  private transactions = 0
  private clocks = 0
  private origin: unknown
  /** Runs ended by a transaction of another origin, encoded, waiting to be delivered in order. */
  private ended: Array<{ update: Uint8Array, origin: unknown }> = []
  /** The transaction whose observers are running, and one counted before it committed (see `before`). */
  private cleaning: Y.Transaction | undefined
  private counted: Y.Transaction | undefined
  private readonly observing: (tr: Y.Transaction) => void
  private readonly before: (tr: Y.Transaction) => void
  private readonly after: (tr: Y.Transaction) => void

  constructor (private readonly doc: Y.Doc, private readonly d: DocChangesDeps) {
    this.since = stateOf(doc)
    this.observing = tr => { this.cleaning = tr }
    this.before = tr => {
      const c = this.cleaning
      if (c !== undefined && c !== this.counted && c.origin !== tr.origin) {
        // started by an observer of `c`: its content is in the store, it ends the run now
        this.counted = c
        this.committed(c, false)
        if (this.transactions > 0) this.end()
        return
      }
      if (this.transactions > 0 && tr.origin !== this.origin) this.end()
    }
    this.after = tr => {
      if (this.cleaning === tr) this.cleaning = undefined
      if (this.counted === tr) {
        this.counted = undefined
        return
      }
      this.committed(tr, true)
    }
    doc.on('beforeObserverCalls', this.observing)
    doc.on('beforeTransaction', this.before)
    doc.on('afterTransactionCleanup', this.after)
  }

  /** Whether something waits to be delivered. */
  get pending (): boolean {
    return this.transactions > 0 || this.ended.length > 0
  }

  /** Deliver everything that waits, in the order it was made. */
  take (): void {
    if (this.transactions > 0) this.end()
    if (this.ended.length === 0) return
    const runs = this.ended
    this.ended = []
    for (const r of runs) this.d.deliver(r.update, r.origin)
  }

  /** Stop listening; what waits is dropped (the document is being forgotten). */
  stop (): void {
    this.doc.off('beforeObserverCalls', this.observing)
    this.doc.off('beforeTransaction', this.before)
    this.doc.off('afterTransactionCleanup', this.after)
    this.ended = []
    this.transactions = 0
    this.clocks = 0
    this.deletes = []
  }

  /** A transaction's content joins the run (`bounded`: taken at once when the run is full). */
  private committed (tr: Y.Transaction, bounded: boolean): void {
    if (this.d.skip(tr.origin)) {
      // the run before it ended when it began
      this.since = stateOf(this.doc)
      return
    }
    let added = 0
    for (const [client, clock] of tr.afterState) added += clock - (tr.beforeState.get(client) ?? 0)
    if (added === 0 && tr.deleteSet.clients.size === 0) return
    this.d.waiting()
    this.origin = tr.origin
    this.transactions++
    this.clocks += added
    if (tr.deleteSet.clients.size > 0) this.deletes.push(tr.deleteSet)
    if (bounded && (this.transactions >= CHANGE_RUN_MAX_TRANSACTIONS || this.clocks >= CHANGE_RUN_MAX_CLOCKS)) this.take()
  }

  /** Encode the run and start the next one here. */
  private end (): void {
    const now = stateOf(this.doc)
    this.ended.push({ update: encodeRun(this.doc, this.since, now, this.deletes), origin: this.origin })
    this.since = now
    this.deletes = []
    this.transactions = 0
    this.clocks = 0
  }
}

/** The document's state vector, read from its struct store. */
function stateOf (doc: Y.Doc): Vector {
  const sv: Vector = new Map()
  for (const [client, structs] of doc.store.clients) {
    const last = structs[structs.length - 1]
    if (last !== undefined) sv.set(client, last.id.clock + last.length)
  }
  return sv
}

/**
 * A V1 update: every struct added between `since` and `now` (the document's state), and the
 * deletes in `deletes`.
 */
function encodeRun (doc: Y.Doc, since: Vector, now: Vector, deletes: DeleteSet[]): Uint8Array {
  const encoder = new Y.UpdateEncoderV1()
  const out = encoder.restEncoder
  const clients: Array<[number, number]> = []
  for (const [client, end] of now) {
    const from = since.get(client) ?? 0
    if (end > from) clients.push([client, from])
  }
  // higher client ids first, as Yjs writes them
  clients.sort((a, b) => b[0] - a[0])
  encoding.writeVarUint(out, clients.length)
  for (const [client, from] of clients) {
    const structs = doc.store.clients.get(client) as Array<Y.Item | Y.GC>
    const clock = Math.max(from, (structs[0] as Y.Item | Y.GC).id.clock)
    const start = Y.findIndexSS(structs, clock)
    encoding.writeVarUint(out, structs.length - start)
    encoder.writeClient(client)
    encoding.writeVarUint(out, clock)
    const first = structs[start] as Y.Item | Y.GC
    first.write(encoder, clock - first.id.clock)
    for (let i = start + 1; i < structs.length; i++) (structs[i] as Y.Item | Y.GC).write(encoder, 0)
  }
  writeDeleteSet(out, (deletes.length === 1 ? deletes[0] as DeleteSet : Y.mergeDeleteSets(deletes)).clients)
  return encoder.toUint8Array()
}

/**
 * A delete set in the V1 update format, as Yjs's `writeDeleteSet` writes it: the clients from the
 * highest id down, then each one's ranges (sorted and merged) as clock and length.
 */
export function writeDeleteSet (out: encoding.Encoder, clients: ReadonlyMap<number, ReadonlyArray<{ clock: number, len: number }>>): void {
  encoding.writeVarUint(out, clients.size)
  for (const [client, items] of [...clients].sort((a, b) => b[0] - a[0])) {
    encoding.writeVarUint(out, client)
    encoding.writeVarUint(out, items.length)
    for (const item of items) {
      encoding.writeVarUint(out, item.clock)
      encoding.writeVarUint(out, item.len)
    }
  }
}
