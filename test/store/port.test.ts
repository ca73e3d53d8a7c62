import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { StoreUnavailableError } from '../../src/store/errors.js';
import { openStore, sqlitePath } from '../../src/store/open.js';
import type { DatabasePort } from '../../src/store/port.js';
import { PostgresPort } from '../../src/store/postgres.js';
import { SqlitePort } from '../../src/store/sqlite.js';
import { sql } from '../../src/store/sql.js';
import { backends, postgresTestStore, sqliteTestStore, type TestStore } from '../helpers/stores.js';

/** The database port on its own, against both backends: what every domain store relies on. */

function openPort(backend: 'sqlite' | 'postgres', ts: TestStore): DatabasePort {
  return backend === 'sqlite' ? new SqlitePort(sqlitePath(ts.url), { sync: 'normal' }) : new PostgresPort(ts.url);
}

for (const backend of backends) {
  describe(`database port: ${backend.name}`, () => {
    let ts: TestStore;
    let db: DatabasePort;
    before(async () => {
      ts = backend.make();
      // The store creates the schema (PostgreSQL's lives in its own schema); the port under test is a second one.
      await (await ts.open()).close();
      db = openPort(backend.name, ts);
      await db.exec('CREATE TABLE port_t (k TEXT PRIMARY KEY, v INTEGER)');
    });
    after(async () => {
      await db?.close();
      await ts?.destroy();
    });

    it('runs a write and says how many rows it changed; queries give rows with numbers as numbers', async () => {
      assert.equal(await db.run(sql`INSERT INTO port_t (k, v) VALUES (${'a'}, ${1}), (${'b'}, ${2})`), 2);
      assert.equal(await db.run(sql`INSERT INTO port_t (k, v) VALUES (${'a'}, ${9}) ON CONFLICT DO NOTHING`), 0);
      assert.equal(await db.run(sql`UPDATE port_t SET v = v WHERE k = ${'a'}`), 1, 'a row matched counts, even unchanged');
      assert.deepEqual(await db.query(sql`SELECT k, v FROM port_t ORDER BY k`), [
        { k: 'a', v: 1 },
        { k: 'b', v: 2 },
      ]);
      assert.deepEqual(await db.query(sql`DELETE FROM port_t WHERE k = ${'b'} RETURNING k`), [{ k: 'b' }]);
    });

    it('a value that looks like SQL is only ever a value', async () => {
      const hostile = "z'); DROP TABLE port_t; --";
      await db.run(sql`INSERT INTO port_t (k, v) VALUES (${hostile}, ${3})`);
      assert.deepEqual(await db.query(sql`SELECT v FROM port_t WHERE k = ${hostile}`), [{ v: 3 }]);
    });

    it('a transaction commits what it did when its function resolves', async () => {
      const result = await db.transaction(async (tx) => {
        await tx.run(sql`INSERT INTO port_t (k, v) VALUES (${'t1'}, ${1})`);
        return (await tx.query(sql`SELECT v FROM port_t WHERE k = ${'t1'}`))[0]!.v;
      });
      assert.equal(result, 1);
      assert.equal((await db.query(sql`SELECT v FROM port_t WHERE k = ${'t1'}`)).length, 1);
    });

    it('a transaction whose function throws leaves nothing behind, and the port goes on working', async () => {
      await assert.rejects(
        db.transaction(async (tx) => {
          await tx.run(sql`INSERT INTO port_t (k, v) VALUES (${'t2'}, ${1})`);
          await tx.run(sql`INSERT INTO port_t (k, v) VALUES (${'t2'}, ${2})`);
        }),
        StoreUnavailableError,
      );
      assert.deepEqual(await db.query(sql`SELECT v FROM port_t WHERE k = ${'t2'}`), []);
      assert.equal(await db.run(sql`INSERT INTO port_t (k, v) VALUES (${'t2'}, ${3})`), 1);
    });

    it('a rehearsal proves a write is taken and leaves nothing behind', async () => {
      await db.rehearse(sql`INSERT INTO port_t (k, v) VALUES (${'r'}, ${1})`);
      assert.deepEqual(await db.query(sql`SELECT v FROM port_t WHERE k = ${'r'}`), []);
      await assert.rejects(db.rehearse(sql`INSERT INTO no_such_table (k) VALUES (${'r'})`), StoreUnavailableError);
    });

    it('a failure is a StoreUnavailableError naming the store, not the driver’s error', async () => {
      await assert.rejects(
        db.query(sql`SELECT * FROM no_such_table`),
        (err: unknown) => err instanceof StoreUnavailableError && err.message.includes(db.location),
      );
      await assert.rejects(
        db.run(sql`INSERT INTO no_such_table (k) VALUES (${1})`),
        (err: unknown) => err instanceof StoreUnavailableError && err.message.includes(db.location),
      );
    });

    it(`the synchronous capability is ${backend.name === 'sqlite' ? 'there' : 'absent'}, and so is the store's writeSync`, async () => {
      assert.equal(db.sync !== undefined, backend.name === 'sqlite');
      const store = await ts.open();
      try {
        assert.equal(typeof store.writeSync, backend.name === 'sqlite' ? 'function' : 'undefined');
      } finally {
        await store.close();
      }
    });
  });
}

describe('database port: SQLite specifics', () => {
  let ts: TestStore;
  let db: SqlitePort;
  before(async () => {
    ts = sqliteTestStore();
    await (await ts.open()).close();
    // Ordinary writes would wait ten minutes on a lock: a rehearsal that waited would time the test out.
    db = new SqlitePort(sqlitePath(ts.url), { sync: 'normal', busyTimeoutMs: 600_000 });
    await db.exec('CREATE TABLE port_t (k TEXT PRIMARY KEY, v INTEGER)');
  });
  after(async () => {
    await db?.close();
    await ts?.destroy();
  });

  it('a synchronous transaction is all or nothing, done before it returns', () => {
    db.sync.transaction(() => {
      db.sync.run(sql`INSERT INTO port_t (k, v) VALUES (${'s1'}, ${1})`);
    });
    assert.throws(
      () =>
        db.sync.transaction(() => {
          db.sync.run(sql`INSERT INTO port_t (k, v) VALUES (${'s2'}, ${1})`);
          db.sync.run(sql`INSERT INTO port_t (k, v) VALUES (${'s1'}, ${2})`);
        }),
      (err: unknown) => err instanceof StoreUnavailableError && /did not take the write/.test(err.message),
    );
    const rows = new Database(sqlitePath(ts.url), { readonly: true });
    try {
      assert.deepEqual(rows.prepare('SELECT k, v FROM port_t ORDER BY k').all(), [{ k: 's1', v: 1 }]);
    } finally {
      rows.close();
    }
  });

  it('refuses other statements while an async transaction is open, rather than letting them join it', async () => {
    let inside!: () => void;
    const entered = new Promise<void>((resolve) => (inside = resolve));
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const tx = db.transaction(async (t) => {
      await t.run(sql`INSERT INTO port_t (k, v) VALUES (${'held'}, ${1})`);
      inside();
      await held;
      throw new Error('rolled back on purpose');
    });
    await entered;
    await assert.rejects(db.run(sql`INSERT INTO port_t (k, v) VALUES (${'outsider'}, ${1})`), /in a transaction/);
    assert.throws(() => db.sync.run(sql`INSERT INTO port_t (k, v) VALUES (${'outsider'}, ${1})`), /in a transaction/);
    release();
    await assert.rejects(tx, /rolled back on purpose/);
    assert.deepEqual(await db.query(sql`SELECT k FROM port_t WHERE k IN (${'held'}, ${'outsider'})`), []);
  });

  it('a rehearsal does not wait on a lock another process holds: it fails at once', async () => {
    const other = new Database(sqlitePath(ts.url));
    other.exec('BEGIN IMMEDIATE');
    try {
      await assert.rejects(
        db.rehearse(sql`INSERT INTO port_t (k, v) VALUES (${'r'}, ${1})`),
        (err: unknown) => err instanceof StoreUnavailableError && /still does not take writes/.test(err.message),
      );
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    await db.rehearse(sql`INSERT INTO port_t (k, v) VALUES (${'r'}, ${1})`);
  });
});

describe('database port: PostgreSQL specifics', () => {
  it('migrating creates the schema the URL names, and a second store opening at once waits its turn', async () => {
    const ts = postgresTestStore();
    try {
      const [a, b] = await Promise.all([openStore(ts.url), openStore(ts.url)]);
      assert.equal(await a.migrate(), await b.migrate());
      await Promise.all([a.close(), b.close()]);
    } finally {
      await ts.destroy();
    }
  });
});
