/** Defaults of the daemon; every one is documented in the README. */

/** Interface of the local endpoint: loopback only unless configured otherwise. */
export const HTTP_HOST = '127.0.0.1'

/** Port of the local endpoint (HTTP, y-websocket, /status, /metrics). */
export const HTTP_PORT = 4410

/** Data directory under the home directory. */
export const DEFAULT_DATA_DIR = '.hearsay'

/** Config file inside the data directory. */
export const CONFIG_FILE = 'config.json'

/** Swarm key file inside the data directory, written by `hearsay init`. */
export const SWARM_KEY_FILE = 'swarm.key'

/** Documents directory (LevelDB) inside the data directory. */
export const DOCS_DIR = 'docs'

/** Storage write batching, in ms. */
export const STORAGE_BATCH_MS = 10

/** Shared type that `hearsay set` writes and `hearsay get` reads first. */
export const DATA_MAP = 'data'

/** Largest request body the endpoint accepts (`set` values). */
export const MAX_BODY_BYTES = 1024 * 1024

/**
 * Documents of this prefix held presence before it moved into the engine (0.2): they are dropped
 * at start and whenever a peer brings one back (legacy-awareness.ts).
 */
export const LEGACY_AWARENESS_PREFIX = '_awareness/'

/** Most awareness clients one y-websocket connection may speak for (a provider has one). */
export const WS_MAX_AWARENESS_CLIENTS = 64

/** How long `status`, `docs`, `get` and `set` (and `watch`, to connect) wait for the daemon, in ms. */
export const CLIENT_TIMEOUT_MS = 5_000

/** Cluster state key (`node.setMeta`) under which a daemon announces its device name. */
export const DEVICE_NAME_META = 'name'

/** Longest device name, in characters; longer names from the API are refused, from peers cut. */
export const DEVICE_NAME_MAX = 64

/** Where the daemon serves its dashboard. */
export const DASHBOARD_PATH = '/dashboard'

/** `GET /api/docs?sizes` gives the size of at most this many documents (the first by id). */
export const DOC_SIZES_MAX = 500

/**
 * A y-websocket client whose unsent data (`ws.bufferedAmount`) would pass this many bytes is cut
 * off (close code 4503): a client that stops reading cannot make the daemon hold an unbounded
 * backlog. The client reconnects and catches up with a fresh sync. One message is always let
 * through to a client with nothing buffered, so a document larger than this still syncs.
 */
export const WS_MAX_BUFFERED_BYTES = 8 * 1024 * 1024

/**
 * Largest y-websocket message a client may send (the WebSocket `maxPayload`); a larger one closes
 * that client with code 1009. Also the most a client may send before its document has loaded.
 */
export const WS_MAX_MESSAGE_BYTES = 16 * 1024 * 1024

/**
 * A client closed for falling behind gets this long, in ms, to read what is queued and the close
 * frame; then its connection is destroyed and its backlog freed.
 */
export const WS_CLOSE_GRACE_MS = 2_000

/**
 * Written into the data directory by a running daemon: its pid, node id and the endpoint it
 * actually listens on, so `status`, `docs`, `get`, `set` and `watch` find it. Removed on a clean stop.
 */
export const RUNTIME_FILE = 'daemon.json'

/** Largest `daemon.json` a client reads, in bytes (it holds a few short fields). */
export const RUNTIME_FILE_MAX_BYTES = 16 * 1024

/** Addresses an invite token carries at most. */
export const INVITE_TOKEN_MAX_ADDRESSES = 8

/** How long an invite stays usable unless `--expires` says otherwise, in ms. */
export const INVITE_EXPIRES_MS = 24 * 60 * 60_000

/** How long `hearsay join` waits to be admitted by a member, in ms. */
export const JOIN_TIMEOUT_MS = 60_000
