import type { Logger } from 'pino';
import type { Keyring } from '../encryption/keyring.js';
import type { Store } from '../store/store.js';
import type { SigningKey } from './keys.js';

/** How the recorder (recorder.ts) is set up: its store, key and mode, its timings, retention and encryption. */

export type RecordingMode = 'write-ahead' | 'best-effort';

export interface RecorderOptions {
  store: Store;
  instanceId: string;
  /**
   * The membership's nonce of this process (cluster/membership.ts): heartbeats then beat only the row this process
   * holds, so a replica whose id another process took never keeps it alive. Absent: the row is written as is.
   */
  boot?: string;
  key: SigningKey;
  mode: RecordingMode;
  log: Logger;
  /** How often this instance says it is alive, and after how long without that its open sessions count as cut off. */
  heartbeatMs?: number;
  staleAfterMs?: number;
  /** Whether this instance seals silent instances' sessions now (one replica at a time does); default always. */
  recoversOthers?: () => boolean;
  /** Whether another instance is seen alive (the membership), whatever its heartbeat's time says; never sealed then. */
  alive?: (instanceId: string) => boolean | Promise<boolean>;
  /** While the store is unavailable, how often it is probed. */
  probeMs?: number;
  /** A network store's write not confirmed within this fails closed (the exchanges waiting on it end). */
  writeTimeoutMs?: number;
  /** Closed sessions older than this are deleted (with a tombstone); 0 keeps them forever. */
  retentionMs?: number;
  /** What retention does to them: delete the rows (with a tombstone), or erase (destroy their data keys, keep the rows). */
  retentionAction?: 'delete' | 'erase';
  /** Audit sinks whose sessions retention keeps until they are shipped whole (a sink down for long delays deletion). */
  keepUnshippedFor?: readonly string[];
  sweepMs?: number;
  /**
   * A network store: while one batch is in flight, how long the next one gathers what sessions append before it
   * starts beside it (at once if the first lands sooner); 0 starts it on the next turn of the event loop. Default 1 ms.
   */
  gatherMs?: number;
  /**
   * Recordings encrypted at rest (recording.encryption): each session gets a data key wrapped by the keyring's current
   * KEK, and every event's payload is sealed under it before it is hashed. Absent: recordings are plain.
   */
  keyring?: Keyring;
  /** Public keys of the other gateways on the store (recording.trustedKeys): erasures they signed are finished here. */
  trustedKeys?: ReadonlyArray<{ keyId: string; publicKeyPem: string }>;
}
