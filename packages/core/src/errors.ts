/**
 * Typed errors. Callers branch on `err.name`, never on message text.
 */

/** Base class of every error Hearsay throws. */
export class HearsayError extends Error {
  static readonly code: string = 'HearsayError'
  constructor (message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = (this.constructor as typeof HearsayError).code
  }
}

/** A frame from a peer could not be decoded: truncated, corrupted, oversized or of an unknown type. */
export class FrameError extends HearsayError {
  static override readonly code: string = 'FrameError'
}

/** A frame is larger than the configured maximum. */
export class FrameTooLargeError extends FrameError {
  static override readonly code: string = 'FrameTooLargeError'
  constructor (readonly size: number, readonly limit: number) {
    super(`frame of ${size} bytes exceeds the limit of ${limit} bytes`)
  }
}

/** The peer speaks a protocol version this node does not. */
export class ProtocolVersionError extends FrameError {
  static override readonly code: string = 'ProtocolVersionError'
  constructor (readonly version: number, readonly supported: number) {
    super(`protocol version ${version} is not supported (this node speaks ${supported})`)
  }
}

/** A well-formed frame broke the protocol: wrong order, wrong identity, unknown exchange. */
export class ProtocolError extends HearsayError {
  static override readonly code: string = 'ProtocolError'
}

/**
 * A peer's input would take this node past one of its receive limits (receive-limits.ts): the
 * exchange it belongs to is aborted and retried later; the session stays open.
 */
export class ReceiveLimitError extends HearsayError {
  static override readonly code: string = 'ReceiveLimitError'
}

/** A Yjs update from a peer or from storage could not be decoded or applied. */
export class InvalidUpdateError extends HearsayError {
  static override readonly code: string = 'InvalidUpdateError'
  constructor (readonly docId: string, message: string, options?: { cause?: unknown }) {
    super(`invalid update for document "${docId}": ${message}`, options)
  }
}

/** A document id is empty, too long or not valid UTF-8. */
export class InvalidDocIdError extends HearsayError {
  static override readonly code: string = 'InvalidDocIdError'
}

/** An option passed to a factory is out of range or of the wrong type. */
export class ConfigError extends HearsayError {
  static override readonly code: string = 'ConfigError'
}

/** The peer is not connected (or the session closed while waiting). */
export class PeerUnavailableError extends HearsayError {
  static override readonly code: string = 'PeerUnavailableError'
}

/** The node is not started, or was stopped while the operation ran. */
export class NotStartedError extends HearsayError {
  static override readonly code: string = 'NotStartedError'
}

/** An operation did not finish in time. */
export class TimeoutError extends HearsayError {
  static override readonly code: string = 'TimeoutError'
}

/** Stored data for a document could not be read back. Names the document; other documents keep working. */
export class StorageCorruptionError extends HearsayError {
  static override readonly code: string = 'StorageCorruptionError'
  constructor (readonly docId: string | undefined, message: string, options?: { cause?: unknown }) {
    super(docId === undefined ? message : `document "${docId}": ${message}`, options)
  }
}

/** The storage backend failed (could not open, disk full, closed). */
export class StorageError extends HearsayError {
  static override readonly code: string = 'StorageError'
}

/** Whether `err` says a document's stored data cannot be read back (the document is quarantined). */
export const isCorruption = (err: unknown): err is StorageCorruptionError => (err as Error | null)?.name === StorageCorruptionError.code

/** A roster statement is malformed, forged, from another swarm, or not authorised by an admin. */
export class TrustError extends HearsayError {
  static override readonly code: string = 'TrustError'
}

/** A peer sent an update for a document it may not write (or asked for one it may not read). */
export class PermissionError extends HearsayError {
  static override readonly code: string = 'PermissionError'
  constructor (readonly peerId: string, readonly docId: string, readonly mode: 'read' | 'write', message: string) {
    super(message)
  }
}

/**
 * `node.replicated()` gave up: the peers it waited for did not confirm holding the document (in
 * storage, when `durable`) at the version of the call within `timeoutMs`. `missing` names the
 * peers that did not confirm (for a count of peers, every candidate that did not), `confirmed`
 * those that did.
 */
export class ReplicationTimeoutError extends HearsayError {
  static override readonly code = 'ReplicationTimeoutError'
  constructor (readonly docId: string, readonly missing: string[], readonly confirmed: string[], message: string) {
    super(message)
  }
}
