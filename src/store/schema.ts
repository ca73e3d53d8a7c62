import { StoreSchemaError } from './errors.js';
import type { Migration } from './migration.js';
import { latestVersion, postgresMigrations, sqliteMigrations } from './migrations.js';
import type { DatabasePort, Queryable } from './port.js';
import { sql } from './sql.js';

/** The versioned schema, applied and checked the same way on both backends (migrations.ts holds each one's SQL). */

function migrationsOf(db: DatabasePort): readonly Migration[] {
  return db.dialect === 'sqlite' ? sqliteMigrations : postgresMigrations;
}

async function versionIn(tx: Queryable): Promise<number> {
  const [row] = await tx.query(sql`SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations`);
  return Number(row?.v ?? 0);
}

/** Applies pending migrations in one transaction; returns the schema version now in place. */
export async function migrate(db: DatabasePort): Promise<number> {
  const migrations = migrationsOf(db);
  const latest = latestVersion(migrations);
  return db.transaction(async (tx) => {
    await db.beforeMigrate?.(tx);
    const appliedAt = db.dialect === 'sqlite' ? 'INTEGER' : 'BIGINT';
    await tx.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at_us ${appliedAt} NOT NULL)`);
    const current = await versionIn(tx);
    if (current > latest) {
      throw new StoreSchemaError(
        `the store ${db.location} has schema version ${current}, newer than this Portcullis understands (${latest}); upgrade Portcullis`,
      );
    }
    for (const m of migrations.filter((x) => x.version > current)) {
      await tx.exec(m.sql);
      await tx.run(sql`INSERT INTO schema_migrations (version, description, applied_at_us) VALUES (${m.version}, ${m.description}, ${Date.now() * 1000})`);
    }
    return latest;
  });
}

/** Throws StoreSchemaError when the store has no Portcullis schema or a newer one (read-only commands). */
export async function checkSchema(db: DatabasePort): Promise<void> {
  const table =
    db.dialect === 'sqlite'
      ? sql`SELECT 1 AS t FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`
      : sql`SELECT 1 AS t WHERE to_regclass('schema_migrations') IS NOT NULL`;
  if ((await db.query(table)).length === 0) {
    throw new StoreSchemaError(`the store ${db.location} holds no recordings yet (no Portcullis schema); start the gateway once to create it`);
  }
  const v = await versionIn(db);
  if (v > latestVersion(migrationsOf(db))) {
    throw new StoreSchemaError(`the store ${db.location} has schema version ${v}, newer than this Portcullis understands; upgrade Portcullis`);
  }
}
