import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import type { Migration } from '../../src/store/migration.js';
import { latestVersion, postgresMigrations, sqliteMigrations } from '../../src/store/migrations.js';
import { sqlitePath } from '../../src/store/open.js';
import type { Store } from '../../src/store/store.js';
import { postgresSql, schemaOf, type TestStore } from './stores.js';

/** A store as an older Portcullis left it, for the migration tests: made at a schema version, and the versions recorded. */

/** The schema versions a store recorded, in order. */
export async function recordedVersions(backend: 'sqlite' | 'postgres', url: string): Promise<number[]> {
  if (backend === 'postgres') {
    const { rows } = await postgresSql('SELECT version FROM schema_migrations ORDER BY version', [], schemaOf(url));
    return rows.map((r: { version: number }) => Number(r.version));
  }
  const db = new Database(sqlitePath(url), { readonly: true });
  try {
    return (db.prepare('SELECT version FROM schema_migrations ORDER BY version').all() as Array<{ version: number }>).map((r) => r.version);
  } finally {
    db.close();
  }
}

/**
 * Creates a store's tables as a Portcullis whose newest migration was `version` left them (plus `seedSql`),
 * straight in the database, so that opening it with this Portcullis has to migrate it the rest of the way.
 */
export async function createAtVersion(backend: 'sqlite' | 'postgres', url: string, version: number, seedSql: string): Promise<void> {
  const migrations: readonly Migration[] = backend === 'sqlite' ? sqliteMigrations : postgresMigrations;
  const script = [
    'CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at_us BIGINT NOT NULL);',
    ...migrations
      .filter((m) => m.version <= version)
      .map((m) => `${m.sql};\nINSERT INTO schema_migrations VALUES (${m.version}, '${m.description.replaceAll("'", "''")}', 0);`),
    seedSql,
  ].join('\n');
  if (backend === 'postgres') {
    const schema = schemaOf(url)!;
    await postgresSql(`CREATE SCHEMA "${schema}"; SET search_path TO "${schema}";\n${script}`);
    return;
  }
  const db = new Database(sqlitePath(url));
  try {
    db.exec(script);
  } finally {
    db.close();
  }
}

/**
 * Opens a store made at `version` (plus `seedSql`) with this Portcullis: it must migrate to the latest version, then
 * `migrated` looks at it; opened again, the schema must check and `reopened` look at it; every version is recorded.
 */
export async function upgradeFrom(
  backend: { name: 'sqlite' | 'postgres'; make: () => TestStore },
  version: number,
  seedSql: string,
  look: { migrated: (store: Store) => Promise<void>; reopened: (store: Store) => Promise<void> },
): Promise<void> {
  const old = backend.make();
  try {
    await createAtVersion(backend.name, old.url, version, seedSql);
    const migrated = await old.open();
    try {
      assert.equal(await migrated.migrate(), latestVersion(sqliteMigrations));
      await look.migrated(migrated);
    } finally {
      await migrated.close();
    }
    // Opened again, the latest version is recorded: nothing is applied twice.
    const reopened = await old.open();
    try {
      await reopened.checkSchema();
      await look.reopened(reopened);
    } finally {
      await reopened.close();
    }
    assert.deepEqual(
      await recordedVersions(backend.name, old.url),
      sqliteMigrations.map((m) => m.version),
    );
  } finally {
    await old.destroy();
  }
}
