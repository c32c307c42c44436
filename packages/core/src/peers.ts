/**
 * The peer table: every peer seen since start or restored from a checkpoint, its open session if
 * any, what it last told us (digest root, document count), when we last heard from it, and when an
 * exchange with it last completed. It persists per-peer checkpoints (`hearsay/peers`), forgets
 * peers nobody has heard of for long, and builds the `peers()` view with cluster state.
 *
 * It emits `open` and `closed` for the current session of a peer only: a session replaced by a
 * newer connection closes silently.
 */
import { equalBytes, fromHex, toHex } from './bytes.js'
import type { Timers } from './clock.js'
import type { ClusterState, MemberState } from './cluster.js'
import { PEER_CHECKPOINTS_MAX } from './constants.js'
import { Emitter } from './events.js'
import type { Log } from './logger.js'
import type { Session } from './session.js'
import type { Storage } from './storage.js'

export interface PeerInfo {
  id: string
  /** The device's name in the swarm's roster (trust.ts); undefined when it has none or unmanaged. */
  name: string | undefined
  connected: boolean
  /** `alive` while connected or heard from (directly or by gossip) within `cluster.suspectMs`. */
  state: MemberState
  /** The member's `setMeta` entries, as last gossiped. */
  meta: Record<string, string>
  /** Our collection digest root equals the one the peer last told us. */
  inSync: boolean
  /** Documents the peer last said it holds. */
  docCount: number
  /**
   * Bytes of document updates the member last announced storing (its `hearsay/bytes` cluster
   * entry, `metrics().storedBytes` on its side); undefined until heard, or with cluster state off.
   * An estimate: compaction and merging make replicas of the same documents differ in size.
   */
  bytes: number | undefined
  /**
   * When we last heard from the peer or saw its heartbeat rise (ms, node clock). A member known
   * only through gossip whose heartbeat has not risen since starts at `suspectMs` before we first
   * heard of it, so it shows `suspect` until it proves alive.
   */
  lastSeen: number
  /**
   * When an exchange with the peer last completed (ms, node clock), kept across restarts in the
   * store's `hearsay/peers` record; undefined when never. Peers from before a restart are listed
   * (`connected: false`) with the digest root they had at last contact, so `inSync` says whether
   * we still agree with them.
   */
  lastSync: number | undefined
}

export interface KnownPeer {
  readonly id: string
  session: Session | undefined
  /** The digest root the peer last told us (Hello, Status) or that its checkpoint holds. */
  root: Uint8Array | undefined
  docCount: number
  lastSeen: number
  /** Our digest root when our Hello went out on the current session. */
  helloRoot: Uint8Array | undefined
  /** When an exchange with the peer last completed (node clock). */
  lastSync: number | undefined
  /** When its checkpoint was last written to storage (node clock). */
  checkpointedAt: number | undefined
  /** The root its last written checkpoint holds. */
  checkpointRoot: Uint8Array | undefined
}

export interface PeerTableEvents extends Record<string, unknown> {
  /** The peer's current session finished its handshake. */
  open: { peer: KnownPeer, session: Session }
  /** The peer's current session closed. */
  closed: { peer: KnownPeer, session: Session, reason: string }
  /** A peer was forgotten (no session, not heard of for long). */
  forgot: { peerId: string }
}

export class PeerTable extends Emitter<PeerTableEvents> {
  private readonly peers = new Map<string, KnownPeer>()
  private checkpointWrite: Promise<void> = Promise.resolve()

  constructor (private readonly selfId: string, private readonly timers: Timers, private readonly storage: Storage, private readonly log: Log) {
    super()
  }

  get size (): number {
    return this.peers.size
  }

  get (peerId: string): KnownPeer | undefined {
    return this.peers.get(peerId)
  }

  /** The peer's record, made when first seen. */
  ensure (peerId: string): KnownPeer {
    let p = this.peers.get(peerId)
    if (p === undefined) {
      p = { id: peerId, session: undefined, root: undefined, docCount: 0, lastSeen: this.timers.now(), helloRoot: undefined, lastSync: undefined, checkpointedAt: undefined, checkpointRoot: undefined }
      this.peers.set(peerId, p)
    }
    return p
  }

  all (): IterableIterator<KnownPeer> {
    return this.peers.values()
  }

  ids (): IterableIterator<string> {
    return this.peers.keys()
  }

  /** Peers with an open session. */
  connected (): KnownPeer[] {
    return [...this.peers.values()].filter(p => p.session?.state === 'open')
  }

  /** The peer's session, if it is open. */
  openSession (peerId: string): Session | undefined {
    const s = this.peers.get(peerId)?.session
    return s?.state === 'open' ? s : undefined
  }

  /** A new connection's session becomes the peer's current one; an older one is closed. */
  attach (session: Session, ourRoot: Uint8Array): KnownPeer {
    const p = this.ensure(session.remoteId)
    if (p.session !== undefined) p.session.close('replaced by a new connection', false)
    p.session = session
    p.helloRoot = ourRoot
    return p
  }

  /** The handshake finished; false when the session is no longer the peer's current one. */
  opened (session: Session): KnownPeer {
    const p = this.ensure(session.remoteId)
    p.session = session
    p.lastSeen = this.timers.now()
    this.emit('open', { peer: p, session })
    return p
  }

  /** The session closed; undefined when it was not the peer's current one (replaced). */
  closed (session: Session, reason: string): KnownPeer | undefined {
    const p = this.peers.get(session.remoteId)
    if (p?.session !== session) return undefined
    p.session = undefined
    this.emit('closed', { peer: p, session, reason })
    return p
  }

  /** The peer told us its digest root (Hello or Status). */
  status (peerId: string, root: Uint8Array, docCount: number): KnownPeer {
    const p = this.ensure(peerId)
    p.root = root
    p.docCount = docCount
    p.lastSeen = this.timers.now()
    return p
  }

  /** We heard from the peer. */
  touch (peerId: string): void {
    this.ensure(peerId).lastSeen = this.timers.now()
  }

  /** When `forgetQuiet(afterMs, knownByGossip)` will next forget a peer, if it will. */
  nextQuietAt (afterMs: number, knownByGossip: (peerId: string) => boolean): number | undefined {
    let next: number | undefined
    for (const p of this.peers.values()) {
      if (p.session === undefined && !knownByGossip(p.id) && (next === undefined || p.lastSeen + afterMs < next)) next = p.lastSeen + afterMs
    }
    return next
  }

  /** Forget peers with no session, unknown to cluster state, not heard from in `afterMs`. */
  forgetQuiet (afterMs: number, knownByGossip: (peerId: string) => boolean): void {
    const now = this.timers.now()
    for (const p of [...this.peers.values()]) {
      if (p.session === undefined && !knownByGossip(p.id) && now - p.lastSeen >= afterMs) {
        this.peers.delete(p.id)
        this.emit('forgot', { peerId: p.id })
      }
    }
  }

  /**
   * Per-peer checkpoints, one metadata record (`hearsay/peers`, JSON): for each peer, its digest
   * root and document count at last contact, when we last heard from it and when an exchange with
   * it last completed. Written when a session closes, at most every `PEER_CHECKPOINT_INTERVAL_MS`
   * per peer after completed exchanges, when a peer's Status confirms it holds our root (and its
   * checkpoint says otherwise), and on stop; read at start. The `PEER_CHECKPOINTS_MAX` most
   * recently seen peers are kept.
   */
  saveCheckpoints (): Promise<void> {
    const record: Record<string, StoredCheckpoint> = {}
    const now = this.timers.now()
    const seen = (p: KnownPeer): number => p.session?.state === 'open' ? now : p.lastSeen
    // the most recently seen ones: peers with a new id every run must not pile up forever
    const kept = [...this.peers.values()].filter(p => p.root !== undefined).sort((x, y) => seen(y) - seen(x)).slice(0, PEER_CHECKPOINTS_MAX)
    for (const p of kept) {
      record[p.id] = { root: toHex(p.root as Uint8Array), docCount: p.docCount, lastSeen: seen(p), lastSync: p.lastSync }
      p.checkpointedAt = now
      p.checkpointRoot = p.root
    }
    const bytes = textEncoder.encode(JSON.stringify(record))
    this.checkpointWrite = this.checkpointWrite.then(async () => { await this.storage.setMeta(CHECKPOINT_KEY, bytes) }).catch((err: unknown) => {
      this.log.warn('could not store peer checkpoints: %s', err instanceof Error ? err.message : String(err))
    })
    return this.checkpointWrite
  }

  /** Whether the peer's checkpoint holds a root other than `root` (and was written at all). */
  checkpointDiffers (p: KnownPeer, root: Uint8Array): boolean {
    return p.checkpointedAt !== undefined && (p.checkpointRoot === undefined || !equalBytes(root, p.checkpointRoot))
  }

  /** Restore the peers of the last run; returns their ids (nothing was queued for them). */
  async loadCheckpoints (): Promise<string[]> {
    let record: Record<string, StoredCheckpoint>
    try {
      const raw = await this.storage.getMeta(CHECKPOINT_KEY)
      if (raw === undefined) return []
      record = JSON.parse(textDecoder.decode(raw)) as Record<string, StoredCheckpoint>
    } catch (err) {
      this.log.warn('ignoring unreadable peer checkpoints: %s', err instanceof Error ? err.message : String(err))
      return []
    }
    const restored: string[] = []
    for (const [pid, c] of Object.entries(record)) {
      if (pid === this.selfId || typeof c?.root !== 'string' || !/^[0-9a-f]*$/.test(c.root)) continue
      const p = this.ensure(pid)
      p.root = fromHex(c.root)
      p.docCount = Number(c.docCount) || 0
      p.lastSeen = Number(c.lastSeen) || 0
      p.lastSync = c.lastSync === undefined ? undefined : Number(c.lastSync)
      restored.push(pid)
    }
    if (this.peers.size > 0) this.log('restored checkpoints of %d peers', this.peers.size)
    return restored
  }

  /**
   * The `peers()` view: every peer in the table and every member cluster state knows, with what
   * gossip says of them where their own word is older.
   */
  view (ourRoot: (peerId: string) => Uint8Array, gossipedRoots: boolean, nameOf: (peerId: string) => string | undefined, members: ClusterState, stateOf: (connected: boolean, lastSeen: number) => MemberState): PeerInfo[] {
    const ids = new Set([...this.peers.keys(), ...members.others()])
    return [...ids].map(pid => {
      const p = this.peers.get(pid)
      const connected = p?.session?.state === 'open'
      const gossiped = members.entries(pid)
      // a connected peer's own Status is the freshest news; otherwise gossip may be newer
      const gossipRoot = gossiped.get('hearsay/root')
      // (gossip carries a member's whole root: with a roster, peers compare only what they share)
      const theirRoot = connected || gossipRoot === undefined || !gossipedRoots ? p?.root : gossipRoot
      const gossipDocs = gossiped.get('hearsay/docs')
      const gossipBytes = gossiped.get('hearsay/bytes')
      const bytes = gossipBytes === undefined ? undefined : Number(textDecoder.decode(gossipBytes))
      const lastSeen = Math.max(p?.lastSeen ?? -Infinity, members.lastHeard(pid) ?? -Infinity)
      const meta: Record<string, string> = {}
      for (const [k, v] of gossiped) if (!k.startsWith('hearsay/')) meta[k] = textDecoder.decode(v)
      return {
        id: pid,
        connected,
        state: stateOf(connected, lastSeen),
        name: nameOf(pid),
        inSync: theirRoot !== undefined && equalBytes(theirRoot, ourRoot(pid)),
        docCount: connected || gossipDocs === undefined ? p?.docCount ?? 0 : Number(textDecoder.decode(gossipDocs)),
        lastSeen,
        bytes: bytes !== undefined && Number.isSafeInteger(bytes) && bytes >= 0 ? bytes : undefined,
        lastSync: p?.lastSync,
        meta
      }
    })
  }
}

const textEncoder = new TextEncoder()
const textDecoder = new TextDecoder('utf-8', { ignoreBOM: true })

/** Metadata record holding the per-peer checkpoints. */
const CHECKPOINT_KEY = 'hearsay/peers'

interface StoredCheckpoint {
  /** The peer's digest root at last contact, hex. */
  root: string
  docCount: number
  lastSeen: number
  lastSync: number | undefined
}

