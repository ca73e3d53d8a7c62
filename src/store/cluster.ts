import type { DatabasePort } from './port.js';
import { num, numOrNull, type Row, strOrNull } from './rows.js';
import { list, sql } from './sql.js';
import { storeNowUs } from './store-clock.js';

/** A replica as the membership table holds it (the `instances` table, migration 8). */
export interface MemberRow {
  id: string;
  /** The internal base URL other replicas reach it at; null for a row written before membership (a recorder heartbeat). */
  address: string | null;
  startedAtUs: number | null;
  state: MemberState;
  /** The nonce of the process that holds the id now: another process with the same id is a duplicate. */
  boot: string | null;
  heartbeatAtUs: number;
  /** How old the heartbeat was when read, by the store's clock (which heartbeats are written by). */
  ageUs: number;
  /** The KEKs it said it has (migration 14); null when it has not said (an older version, or still starting). */
  keks: MemberKeks | null;
}

/** A replica's recording encryption keys: their ids (sorted), and the one new data keys are wrapped with (null: plain). */
export interface MemberKeks {
  current: string | null;
  ids: string[];
}

export type MemberState = 'serving' | 'draining' | 'gone';

/** The replicas of one gateway sharing the store (src/cluster/membership.ts). */
export interface ClusterStore {
  member(id: string): Promise<MemberRow | undefined>;
  members(): Promise<MemberRow[]>;
  /**
   * Takes an instance id for this process: written when there is no row, or when the row's boot is still `expectedBoot`
   * (what the caller read and judged dead or gone), so two processes racing for one id cannot both win. False when lost.
   */
  claimMember(
    row: Omit<MemberRow, 'state' | 'ageUs' | 'heartbeatAtUs' | 'keks'> & { heartbeatAtUs?: number },
    expectedBoot: string | null | undefined,
  ): Promise<boolean>;
  /**
   * A heartbeat (with the state and address) of the process holding the id; false when another process holds it now.
   * Its time is the store's clock (`nowUs`, here and in claimMember, only for tests that plant a skewed one).
   */
  beatMember(id: string, boot: string, state: MemberState, address: string | null, nowUs?: number): Promise<boolean>;
  /** Says which KEKs the process holding the id has; false when another process holds it now. */
  publishMemberKeks(id: string, boot: string, keks: MemberKeks): Promise<boolean>;
  /**
   * Deletes the rows of replicas silent (by the store's clock) for longer than `silentForUs` whose work is done: no
   * session of theirs is still open (a survivor seals it) and no review of theirs still held (one interrupts it).
   * Only `ids` are candidates: those the caller judged gone itself (the store's clock alone may have stepped, and
   * would take live replicas' rows with it). Returns the ids removed.
   */
  pruneMembers(silentForUs: number, ids: readonly string[]): Promise<string[]>;
}

export function clusterStore(db: DatabasePort): ClusterStore {
  const now = () => storeNowUs(db.dialect);
  return {
    async member(id) {
      const [row] = await db.query(sql`SELECT *, ${now()} - heartbeat_at_us AS age_us FROM instances WHERE id = ${id}`);
      return row === undefined ? undefined : memberFromDb(row);
    },
    async members() {
      return (await db.query(sql`SELECT *, ${now()} - heartbeat_at_us AS age_us FROM instances ORDER BY id`)).map(memberFromDb);
    },
    async claimMember(m, expectedBoot) {
      const at = m.heartbeatAtUs === undefined ? now() : sql`${m.heartbeatAtUs}`;
      if (expectedBoot === undefined) {
        const inserted = await db.run(sql`INSERT INTO instances (id, heartbeat_at_us, address, started_at_us, state, boot)
          VALUES (${m.id}, ${at}, ${m.address}, ${m.startedAtUs}, 'serving', ${m.boot}) ON CONFLICT (id) DO NOTHING`);
        return inserted === 1;
      }
      const boot = expectedBoot === null ? sql`boot IS NULL` : sql`boot = ${expectedBoot}`;
      return (
        (await db.run(sql`UPDATE instances SET heartbeat_at_us = ${at}, address = ${m.address}, started_at_us = ${m.startedAtUs},
          state = 'serving', boot = ${m.boot}, keks = NULL WHERE id = ${m.id} AND ${boot}`)) === 1
      );
    },
    async beatMember(id, boot, state, address, nowUs) {
      const set = sql`heartbeat_at_us = ${nowUs === undefined ? now() : sql`${nowUs}`}, state = ${state}, address = ${address}`;
      return (await db.run(sql`UPDATE instances SET ${set} WHERE id = ${id} AND boot = ${boot}`, { bounded: true })) === 1;
    },
    async publishMemberKeks(id, boot, keks) {
      return (await db.run(sql`UPDATE instances SET keks = ${JSON.stringify(keks)} WHERE id = ${id} AND boot = ${boot}`)) === 1;
    },
    async pruneMembers(silentForUs, ids) {
      if (ids.length === 0) return [];
      const rows = await db.query(sql`DELETE FROM instances WHERE id IN (${list([...ids])}) AND heartbeat_at_us < ${now()} - ${silentForUs}
        AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.instance_id = instances.id AND s.status = 'open')
        AND NOT EXISTS (SELECT 1 FROM reviews r WHERE r.instance_id = instances.id AND r.status IN ('pending', 'approved'))
        RETURNING id`);
      return rows.map((r) => String(r.id)).sort();
    },
  };
}

function memberFromDb(r: Row): MemberRow {
  const state = String(r.state);
  return {
    id: String(r.id),
    address: strOrNull(r.address),
    startedAtUs: numOrNull(r.started_at_us),
    state: state === 'draining' || state === 'gone' ? state : 'serving',
    boot: strOrNull(r.boot),
    heartbeatAtUs: num(r.heartbeat_at_us),
    ageUs: num(r.age_us),
    keks: keksFromDb(r.keks),
  };
}

/** The stored JSON, or null when absent or not what a replica writes (then it is treated as not said). */
function keksFromDb(v: unknown): MemberKeks | null {
  if (typeof v !== 'string') return null;
  try {
    const k = JSON.parse(v) as Partial<MemberKeks>;
    if ((k.current === null || typeof k.current === 'string') && Array.isArray(k.ids) && k.ids.every((i) => typeof i === 'string')) {
      return { current: k.current, ids: k.ids };
    }
  } catch {}
  return null;
}
