import type { Migration } from './migration.js';

/**
 * The migrations after the first, written once for both backends: each takes what differs between them (the integer
 * type, the collation of keys, the session indexes) as parameters.
 */

/** Version 2 is the same on both backends but for the integer type. */
export function accessRequestsMigration(int: 'INTEGER' | 'BIGINT'): Migration {
  return {
    version: 2,
    description: 'just-in-time access requests',
    sql: `
      CREATE TABLE access_requests (
        id TEXT PRIMARY KEY,
        connection TEXT NOT NULL,
        requester_subject TEXT NOT NULL,
        requester_issuer TEXT NOT NULL,
        requester_email TEXT,
        reason TEXT NOT NULL,
        duration_ms ${int} NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'expired', 'revoked')),
        created_at_us ${int} NOT NULL,
        decided_at_us ${int},
        decider_subject TEXT,
        decider_issuer TEXT,
        decision_note TEXT,
        expires_at_us ${int} NOT NULL
      );
      CREATE INDEX access_requests_by_status ON access_requests (status, expires_at_us);
      CREATE UNIQUE INDEX access_requests_one_pending ON access_requests (connection, requester_issuer, requester_subject) WHERE status = 'pending';
    `,
  };
}

/**
 * Version 3, the same on both backends but for the integer type. `approval_count` mirrors the length of the
 * `approvals` JSON so that an update can compare-and-set on it: two approvals racing cannot both land.
 */
export function reviewsMigration(int: 'INTEGER' | 'BIGINT'): Migration {
  return {
    version: 3,
    description: 'guardrail reviews',
    sql: `
      CREATE TABLE reviews (
        id TEXT PRIMARY KEY,
        status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'released', 'rejected', 'expired', 'interrupted', 'cancelled')),
        rule TEXT NOT NULL,
        connection TEXT NOT NULL,
        session_id TEXT NOT NULL,
        instance_id TEXT NOT NULL,
        method TEXT NOT NULL,
        target TEXT,
        params TEXT NOT NULL,
        digest TEXT NOT NULL,
        requester_subject TEXT NOT NULL,
        requester_issuer TEXT NOT NULL,
        requester_email TEXT,
        approver_groups TEXT NOT NULL,
        min_approvals INTEGER NOT NULL,
        approvals TEXT NOT NULL,
        approval_count INTEGER NOT NULL,
        created_at_us ${int} NOT NULL,
        expires_at_us ${int} NOT NULL,
        decided_at_us ${int},
        decider_subject TEXT,
        decider_issuer TEXT,
        decider_email TEXT,
        decision_note TEXT
      );
      CREATE INDEX reviews_by_status ON reviews (status, created_at_us DESC);
      CREATE INDEX reviews_by_instance ON reviews (instance_id, created_at_us DESC);
    `,
  };
}

/**
 * Version 4, the same on both backends but for the integer type and the key columns' collation: PostgreSQL's
 * key columns compare in byte order ("C"), as SQLite's do, so that pins list in the same order on both whatever
 * the database's locale, and the primary key's index serves that order.
 */
export function toolPinsMigration(int: 'INTEGER' | 'BIGINT', key: 'TEXT' | 'TEXT COLLATE "C"'): Migration {
  return {
    version: 4,
    description: 'tool pins',
    sql: `
      CREATE TABLE tool_pins (
        connection ${key} NOT NULL,
        tool ${key} NOT NULL,
        digest TEXT,
        definition TEXT,
        pending_digest TEXT,
        pending_definition TEXT,
        pending_since_us ${int},
        removed_at_us ${int},
        pinned_at_us ${int} NOT NULL,
        approved_at_us ${int},
        approved_by TEXT,
        PRIMARY KEY (connection, tool)
      );
    `,
  };
}

/**
 * Version 5, the same on both backends but for the integer type and the key column's collation (byte order on
 * PostgreSQL, as for the tool pins, so that agents list by name in the same order on both). An agent's token is
 * never stored: only its SHA-256.
 */
export function agentsMigration(int: 'INTEGER' | 'BIGINT', key: 'TEXT' | 'TEXT COLLATE "C"'): Migration {
  return {
    version: 5,
    description: 'agents',
    sql: `
      CREATE TABLE agents (
        name ${key} PRIMARY KEY,
        token_hash TEXT NOT NULL,
        created_at_us ${int} NOT NULL,
        revoked_at_us ${int},
        last_seen_at_us ${int}
      );
    `,
  };
}

/**
 * Version 6: the web console's sign-ins in progress and its signed-in sessions (only the SHA-256 of a session's
 * cookie is stored); each session's issuer beside its subject, so "one's own sessions" means one person even when
 * two IdPs give the same subject (sessions recorded before stay visible to auditors only); and what its session list needs over many sessions (bench/console.ts): an index by status; on
 * SQLite a time index that carries the columns the list filters on, so a scan for a flag or a text reads only the
 * rows it keeps; on PostgreSQL a lowercase column of the four a text search looks in, so a row costs one LIKE.
 */
export function consoleMigration(int: 'INTEGER' | 'BIGINT', sessionIndexes: string): Migration {
  return {
    version: 6,
    description: 'console sign-ins and sessions; sessions know their issuer; session list indexes',
    sql: `
      ALTER TABLE sessions ADD COLUMN issuer TEXT;
      ${sessionIndexes}
      CREATE TABLE console_logins (
        state TEXT PRIMARY KEY,
        issuer TEXT NOT NULL,
        code_verifier TEXT NOT NULL,
        nonce TEXT NOT NULL,
        return_to TEXT NOT NULL,
        redirect_uri TEXT NOT NULL,
        resource TEXT NOT NULL,
        expires_at_us ${int} NOT NULL
      );
      CREATE TABLE console_sessions (
        id_hash TEXT PRIMARY KEY,
        subject TEXT NOT NULL,
        issuer TEXT NOT NULL,
        email TEXT,
        name TEXT,
        groups TEXT NOT NULL,
        csrf_token TEXT NOT NULL,
        created_at_us ${int} NOT NULL,
        expires_at_us ${int} NOT NULL
      );
      CREATE INDEX console_sessions_by_expiry ON console_sessions (expires_at_us);
    `,
  };
}

/**
 * Version 7, the same on both backends: why a tool definition is suspicious (the poisoning scan's findings, a name
 * another connection offered first), for the approved and for the pending definition; JSON arrays, NULL for none.
 */
export const toolPinReasonsMigration: Migration = {
  version: 7,
  description: 'tool pin reasons',
  sql: `
      ALTER TABLE tool_pins ADD COLUMN reasons TEXT;
      ALTER TABLE tool_pins ADD COLUMN pending_reasons TEXT;
    `,
};

/**
 * The gateway's shared token key when cluster.tokenKeys is not configured (src/store/token-keys.ts): one row, made by
 * the first gateway to need it, read by every replica on the store.
 */
export const tokenKeysMigration: Migration = {
  version: 8,
  description: 'shared token key',
  sql: `
      CREATE TABLE token_keys (
        id TEXT PRIMARY KEY,
        secret TEXT NOT NULL,
        created_at_us BIGINT NOT NULL
      );
      `,
};

/**
 * Version 9, the same on both backends: the instances table becomes the replicas' membership (src/cluster/): where
 * each replica is reached for the internal hop, when it started, whether it serves, drains or has left, and the
 * nonce of the process holding the id (two live processes never share one). Rows written before have no address.
 */
export const membershipMigration: Migration = {
  version: 9,
  description: 'replica membership',
  sql: `
      ALTER TABLE instances ADD COLUMN address TEXT;
      ALTER TABLE instances ADD COLUMN started_at_us BIGINT;
      ALTER TABLE instances ADD COLUMN state TEXT NOT NULL DEFAULT 'serving';
      ALTER TABLE instances ADD COLUMN boot TEXT;
    `,
};

/**
 * Version 11, the same on both backends: the virtual server a held call came through (src/virtual) and the tool's or
 * prompt's name there, so approvers see the name the caller used beside the member's own; NULL for a direct call.
 */
export const reviewsVirtualMigration: Migration = {
  version: 11,
  description: 'reviews: the virtual server a call came through',
  sql: `
      ALTER TABLE reviews ADD COLUMN virtual_server TEXT;
      ALTER TABLE reviews ADD COLUMN virtual_target TEXT;
    `,
};

/**
 * Version 10, the same on both backends: which replica holds a live tunnel of which agent (src/agent/locations.ts),
 * so that a session on another replica is relayed to it. A row is written when a replica accepts an agent's first
 * tunnel and removed when its last one closes; rows of a replica that is gone are ignored (and swept).
 */
export const agentTunnelsMigration: Migration = {
  version: 10,
  description: 'agent tunnel locations',
  sql: `
      CREATE TABLE agent_tunnels (
        agent TEXT NOT NULL,
        instance_id TEXT NOT NULL,
        connected_at_us BIGINT NOT NULL,
        PRIMARY KEY (agent, instance_id)
      );
    `,
};

/**
 * Version 12, the same on both backends: the audit streams' durable cursors (src/audit/). `audit_sinks` holds, per
 * configured sink name, when it was first seen (sessions opened before are not its business) and its watermark (every
 * session opened before it has been shipped whole, so scans start there). `audit_cursors` holds, per sink and session,
 * the last event shipped (or passed over by the sink's event filter), and whether the session is sealed and shipped whole.
 */
export const auditCursorsMigration: Migration = {
  version: 12,
  description: 'audit stream cursors',
  sql: `
      CREATE TABLE audit_sinks (
        name TEXT PRIMARY KEY,
        since_us BIGINT NOT NULL,
        watermark_us BIGINT NOT NULL
      );
      CREATE TABLE audit_cursors (
        sink TEXT NOT NULL,
        session_id TEXT NOT NULL,
        seq BIGINT NOT NULL,
        done INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (sink, session_id)
      );
    `,
};

/**
 * Version 13, the same on both backends: recording encryption (src/encryption/). `data_keys` holds each session's (and
 * each access request's) data key wrapped by a KEK, or, once erased, who erased it, when and why (wrapped is NULL).
 * `kek_checks` holds, per KEK id, a known value wrapped under it: a process whose KEK of that id does not unwrap it
 * holds other key material under the same name and is refused at start.
 */
export const dataKeysMigration: Migration = {
  version: 13,
  description: 'recording encryption: data keys and KEK checks',
  sql: `
      CREATE TABLE data_keys (
        owner TEXT PRIMARY KEY,
        kek_id TEXT NOT NULL,
        wrapped TEXT,
        created_at_us BIGINT NOT NULL,
        erased_at_us BIGINT,
        erased_by TEXT,
        erase_reason TEXT
      );
      CREATE INDEX data_keys_by_kek ON data_keys (kek_id, owner);
      CREATE TABLE kek_checks (
        kek_id TEXT PRIMARY KEY,
        provider TEXT NOT NULL,
        check_value TEXT NOT NULL,
        created_at_us BIGINT NOT NULL
      );
    `,
};

/**
 * Version 14, the same on both backends: the KEKs each replica has (src/encryption/start-checks.ts), as JSON
 * `{ "current": "k2", "ids": ["k1", "k2"] }` (`current` null: it records plain). A replica whose keys cannot read what a
 * live one writes, or the reverse, is refused at start; NULL is a replica that has not said (an older version).
 */
export const instanceKeksMigration: Migration = {
  version: 14,
  description: "replica membership: each replica's KEKs",
  sql: `
      ALTER TABLE instances ADD COLUMN keks TEXT;
    `,
};

/**
 * Version 15, the same on both backends: erasure entries of the ledger by time (a partial index), so that the sweeper
 * finds an erasure whose gateway stopped between signing its entry and destroying the key without reading the ledger.
 */
export const erasedKeysMigration: Migration = {
  version: 15,
  description: 'recording encryption: erasures in the ledger by time',
  sql: `
      CREATE INDEX ledger_erasures ON ledger (time_us) WHERE kind = 'erased';
    `,
};

/**
 * Version 16, the same on both backends: since when a connection's server lists a tool's name more than once in one
 * list (src/pins/tool-pins.ts), NULL while it lists it once. Such a name is held on every replica, and after a
 * restart, until a list shows it once again: the store says so, not one gateway's memory.
 */
export const toolPinsListedTwiceMigration: Migration = {
  version: 16,
  description: 'tool pins: names a server lists twice',
  sql: `
      ALTER TABLE tool_pins ADD COLUMN duplicated_since_us BIGINT;
    `,
};
