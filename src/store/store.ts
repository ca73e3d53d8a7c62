import { type AccessStore, accessStore } from './access.js';
import { type AgentTunnelStore, agentTunnelStore } from './agent-tunnels.js';
import { type AgentStore, agentStore } from './agents.js';
import { type AuditStore, auditStore } from './audit.js';
import { type ClusterStore, clusterStore } from './cluster.js';
import { type ConsoleStore, consoleStore } from './console.js';
import { type DataKeyStore, dataKeyStore } from './data-keys.js';
import { type EncryptionUpkeepStore, encryptionUpkeepStore } from './encryption-upkeep.js';
import { type PinStore, pinStore } from './pins.js';
import type { DatabasePort } from './port.js';
import { type RecordingStore, recordingStore } from './recording.js';
import { type ReviewStore, reviewStore } from './reviews.js';
import { checkSchema, migrate } from './schema.js';
import { type TokenKeyStore, tokenKeyStore } from './token-keys.js';

export { StoreSchemaError, StoreUnavailableError } from './errors.js';
export type {
  AccessStore,
  AgentStore,
  AgentTunnelStore,
  AuditStore,
  ClusterStore,
  ConsoleStore,
  DataKeyStore,
  EncryptionUpkeepStore,
  PinStore,
  RecordingStore,
  ReviewStore,
  TokenKeyStore,
};

/**
 * The store the gateway, the CLI and the API use: one small interface per domain, each written once over a
 * database port (port.ts) with two backends, SQLite embedded and PostgreSQL shared, that pass one contract suite
 * (test/store/). A part that needs one domain can ask for that interface alone.
 */
export interface Store
  extends RecordingStore,
    ReviewStore,
    PinStore,
    AgentStore,
    AgentTunnelStore,
    AccessStore,
    ConsoleStore,
    ClusterStore,
    TokenKeyStore,
    AuditStore,
    DataKeyStore,
    EncryptionUpkeepStore {
  readonly backend: DatabasePort['dialect'];
  /** Where it is, for logs and errors; never a password. */
  readonly location: string;
  /** Applies pending migrations; returns the schema version now in place. */
  migrate(): Promise<number>;
  /** Throws StoreSchemaError when the store has no Portcullis schema or a newer one (read-only commands). */
  checkSchema(): Promise<void>;
  close(): Promise<void>;
}

/** The domain stores over one database, as one object. */
export function storeOver(db: DatabasePort): Store {
  return {
    backend: db.dialect,
    location: db.location,
    migrate: () => migrate(db),
    checkSchema: () => checkSchema(db),
    close: () => db.close(),
    ...recordingStore(db),
    ...reviewStore(db),
    ...pinStore(db),
    ...agentStore(db),
    ...agentTunnelStore(db),
    ...accessStore(db),
    ...consoleStore(db),
    ...tokenKeyStore(db),
    ...clusterStore(db),
    ...auditStore(db),
    ...dataKeyStore(db),
    ...encryptionUpkeepStore(db),
  };
}
