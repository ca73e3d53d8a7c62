/**
 * Versioned schema migrations, one list per backend, applied in order at start inside a transaction and
 * recorded in `schema_migrations`. A migration is never edited once released: changes are new versions.
 */
import type { Migration } from './migration.js';
import {
  accessRequestsMigration,
  agentTunnelsMigration,
  agentsMigration,
  auditCursorsMigration,
  consoleMigration,
  dataKeysMigration,
  erasedKeysMigration,
  instanceKeksMigration,
  membershipMigration,
  reviewsMigration,
  reviewsVirtualMigration,
  tokenKeysMigration,
  toolPinReasonsMigration,
  toolPinsListedTwiceMigration,
  toolPinsMigration,
} from './shared-migrations.js';

export const sqliteMigrations: readonly Migration[] = [
  {
    version: 1,
    description: 'sessions, events, ledger, keys, instances',
    sql: `
      CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        instance_id TEXT NOT NULL,
        connection TEXT NOT NULL,
        subject TEXT NOT NULL,
        email TEXT,
        groups TEXT NOT NULL,
        edge TEXT NOT NULL,
        remote_address TEXT,
        client_info TEXT,
        server_info TEXT,
        protocol_version TEXT,
        opened_at_us INTEGER NOT NULL,
        closed_at_us INTEGER,
        status TEXT NOT NULL CHECK (status IN ('open', 'closed', 'cut-off')),
        close_reason TEXT,
        event_count INTEGER,
        last_hash TEXT,
        seal TEXT,
        seal_key_id TEXT,
        denials INTEGER NOT NULL DEFAULT 0,
        redactions INTEGER NOT NULL DEFAULT 0
      );
      CREATE INDEX sessions_by_time ON sessions (opened_at_us DESC, id DESC);
      CREATE INDEX sessions_by_subject ON sessions (subject, opened_at_us DESC);
      CREATE INDEX sessions_by_connection ON sessions (connection, opened_at_us DESC);
      CREATE INDEX sessions_open ON sessions (instance_id) WHERE status = 'open';
      CREATE INDEX sessions_by_close ON sessions (closed_at_us) WHERE status <> 'open';

      CREATE TABLE events (
        session_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        time_us INTEGER NOT NULL,
        mono_us INTEGER NOT NULL,
        kind TEXT NOT NULL,
        direction TEXT,
        boundary TEXT,
        payload TEXT NOT NULL,
        forwarded TEXT,
        hash TEXT NOT NULL,
        PRIMARY KEY (session_id, seq)
      );

      CREATE TABLE ledger (
        instance_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        time_us INTEGER NOT NULL,
        kind TEXT NOT NULL,
        session_id TEXT NOT NULL,
        detail TEXT NOT NULL,
        hash TEXT NOT NULL,
        PRIMARY KEY (instance_id, seq)
      );
      CREATE INDEX ledger_by_session ON ledger (session_id);

      CREATE TABLE signing_keys (
        key_id TEXT PRIMARY KEY,
        public_key TEXT NOT NULL,
        instance_id TEXT NOT NULL,
        created_at_us INTEGER NOT NULL
      );

      CREATE TABLE instances (
        id TEXT PRIMARY KEY,
        heartbeat_at_us INTEGER NOT NULL
      );
    `,
  },
  accessRequestsMigration('INTEGER'),
  reviewsMigration('INTEGER'),
  toolPinsMigration('INTEGER', 'TEXT'),
  agentsMigration('INTEGER', 'TEXT'),
  consoleMigration(
    'INTEGER',
    `DROP INDEX sessions_by_time;
      CREATE INDEX sessions_by_time ON sessions (opened_at_us DESC, id DESC, subject, email, connection, status, denials, redactions);
      CREATE INDEX sessions_by_status ON sessions (status, opened_at_us DESC, id DESC);`,
  ),
  toolPinReasonsMigration,
  tokenKeysMigration,
  membershipMigration,
  agentTunnelsMigration,
  reviewsVirtualMigration,
  auditCursorsMigration,
  dataKeysMigration,
  instanceKeksMigration,
  erasedKeysMigration,
  toolPinsListedTwiceMigration,
];

export const postgresMigrations: readonly Migration[] = [
  {
    version: 1,
    description: 'sessions, events, ledger, keys, instances',
    sql: `
      CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        instance_id TEXT NOT NULL,
        connection TEXT NOT NULL,
        subject TEXT NOT NULL,
        email TEXT,
        groups TEXT NOT NULL,
        edge TEXT NOT NULL,
        remote_address TEXT,
        client_info TEXT,
        server_info TEXT,
        protocol_version TEXT,
        opened_at_us BIGINT NOT NULL,
        closed_at_us BIGINT,
        status TEXT NOT NULL CHECK (status IN ('open', 'closed', 'cut-off')),
        close_reason TEXT,
        event_count INTEGER,
        last_hash TEXT,
        seal TEXT,
        seal_key_id TEXT,
        denials INTEGER NOT NULL DEFAULT 0,
        redactions INTEGER NOT NULL DEFAULT 0
      );
      CREATE INDEX sessions_by_time ON sessions (opened_at_us DESC, id DESC);
      CREATE INDEX sessions_by_subject ON sessions (subject, opened_at_us DESC);
      CREATE INDEX sessions_by_connection ON sessions (connection, opened_at_us DESC);
      CREATE INDEX sessions_open ON sessions (instance_id) WHERE status = 'open';
      CREATE INDEX sessions_by_close ON sessions (closed_at_us) WHERE status <> 'open';

      CREATE TABLE events (
        session_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        time_us BIGINT NOT NULL,
        mono_us BIGINT NOT NULL,
        kind TEXT NOT NULL,
        direction TEXT,
        boundary TEXT,
        payload TEXT NOT NULL,
        forwarded TEXT,
        hash TEXT NOT NULL,
        PRIMARY KEY (session_id, seq)
      );

      CREATE TABLE ledger (
        instance_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        time_us BIGINT NOT NULL,
        kind TEXT NOT NULL,
        session_id TEXT NOT NULL,
        detail TEXT NOT NULL,
        hash TEXT NOT NULL,
        PRIMARY KEY (instance_id, seq)
      );
      CREATE INDEX ledger_by_session ON ledger (session_id);

      CREATE TABLE signing_keys (
        key_id TEXT PRIMARY KEY,
        public_key TEXT NOT NULL,
        instance_id TEXT NOT NULL,
        created_at_us BIGINT NOT NULL
      );

      CREATE TABLE instances (
        id TEXT PRIMARY KEY,
        heartbeat_at_us BIGINT NOT NULL
      );
    `,
  },
  accessRequestsMigration('BIGINT'),
  reviewsMigration('BIGINT'),
  toolPinsMigration('BIGINT', 'TEXT COLLATE "C"'),
  agentsMigration('BIGINT', 'TEXT COLLATE "C"'),
  consoleMigration(
    'BIGINT',
    `CREATE INDEX sessions_by_status ON sessions (status, opened_at_us DESC, id DESC);
      ALTER TABLE sessions ADD COLUMN search_text TEXT COLLATE "C"
        GENERATED ALWAYS AS (lower(subject || chr(31) || coalesce(email, '') || chr(31) || connection || chr(31) || id)) STORED;`,
  ),
  toolPinReasonsMigration,
  tokenKeysMigration,
  membershipMigration,
  agentTunnelsMigration,
  reviewsVirtualMigration,
  auditCursorsMigration,
  dataKeysMigration,
  instanceKeksMigration,
  erasedKeysMigration,
  toolPinsListedTwiceMigration,
];

export function latestVersion(migrations: readonly Migration[]): number {
  return migrations.at(-1)?.version ?? 0;
}
