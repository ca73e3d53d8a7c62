import type { DatabasePort, Queryable } from './port.js';
import { type Entry, insertSql, num, numOrNull, type Row, setSql, strOrNull } from './rows.js';
import { join, list, raw, sql } from './sql.js';
import type { ToolPinExpected, ToolPinReason, ToolPinRow, ToolPinUpdate } from './pin-types.js';

/** Each connection's pinned tool definitions (pins/). */
export interface PinStore {
  /** Adds a pin; false (nothing written) when the connection already has one for the tool (another gateway pinned it first). */
  insertToolPin(row: ToolPinRow): Promise<boolean>;
  /**
   * Adds a connection's first pins in one statement, so that another gateway reading the pins meanwhile sees all of
   * them or none (rather than taking the rest for tools added since); the tools written, less those pinned already.
   */
  insertToolPins(rows: readonly ToolPinRow[]): Promise<Set<string>>;
  /** A connection's pins, or every connection's, by connection then tool. */
  listToolPins(connection?: string): Promise<ToolPinRow[]>;
  /**
   * Compare-and-set on the pin's approved and pending digests (null matches null): applies `to` only while both
   * are still as the caller last read them (and, with `listedOnce`, while its name is not listed twice); false when
   * they were not. With nothing to write it changes nothing, and still tells whether the pin is as expected.
   */
  updateToolPin(connection: string, tool: string, expect: ToolPinExpected, to: ToolPinUpdate): Promise<boolean>;
  /**
   * Marks the pins of `tools` as listed twice by their server since `sinceUs`, or, with null, as listed once again. A
   * pin marked already keeps its first time; a tool without a pin is passed over. The tools whose mark changed.
   */
  markToolPinsDuplicated(connection: string, tools: readonly string[], sinceUs: number | null): Promise<string[]>;
}

/** Tools (or pins) per statement: inside both databases' limits on bound values. */
const chunkSize = 1000;

export function pinStore(db: DatabasePort): PinStore {
  return {
    async insertToolPin(row) {
      return (await db.run(sql`${insertSql('tool_pins', toolPinToDb(row))} ON CONFLICT (connection, tool) DO NOTHING`)) === 1;
    },
    async insertToolPins(rows) {
      const write = async (q: Queryable) => {
        const written = new Set<string>();
        // One statement per 1,000 pins (14 values each).
        for (let i = 0; i < rows.length; i += chunkSize) {
          const chunk = rows.slice(i, i + chunkSize).map(toolPinToDb);
          const columns = raw(chunk[0]!.map(([c]) => c).join(', '));
          const values = join(chunk.map((entries) => sql`(${list(entries.map(([, v]) => v))})`));
          const inserted = await q.query(sql`INSERT INTO tool_pins (${columns}) VALUES ${values} ON CONFLICT (connection, tool) DO NOTHING RETURNING tool`);
          for (const r of inserted) written.add(String(r.tool));
        }
        return written;
      };
      // Several statements are one transaction on PostgreSQL, which replicas share; an SQLite file serves one gateway.
      return rows.length <= chunkSize || db.dialect === 'sqlite' ? write(db) : db.transaction(write);
    },
    async listToolPins(connection) {
      const where = connection === undefined ? raw('') : sql` WHERE connection = ${connection}`;
      return (await db.query(sql`SELECT * FROM tool_pins${where} ORDER BY connection, tool`)).map(toolPinFromDb);
    },
    async updateToolPin(connection, tool, expect, to) {
      const entries: Array<[string, string | number | null | undefined]> = [
        ['digest', to.digest],
        ['definition', to.definition],
        ['pending_digest', to.pendingDigest],
        ['pending_definition', to.pendingDefinition],
        ['pending_since_us', to.pendingSinceUs],
        ['removed_at_us', to.removedAtUs],
        ['approved_at_us', to.approvedAtUs],
        ['approved_by', to.approvedBy],
        ['reasons', to.reasons === undefined ? undefined : reasonsToDb(to.reasons)],
        ['pending_reasons', to.pendingReasons === undefined ? undefined : reasonsToDb(to.pendingReasons)],
      ];
      const set = entries.some(([, v]) => v !== undefined) ? setSql(entries) : raw('digest = digest');
      // IS NOT DISTINCT FROM: an expected null matches NULL (SQLite has it since 3.39).
      const listedOnce = expect.listedOnce ? raw(' AND duplicated_since_us IS NULL') : raw('');
      const changed = await db.run(sql`UPDATE tool_pins SET ${set} WHERE connection = ${connection} AND tool = ${tool}
        AND digest IS NOT DISTINCT FROM ${expect.digest} AND pending_digest IS NOT DISTINCT FROM ${expect.pendingDigest}${listedOnce}`);
      return changed === 1;
    },
    async markToolPinsDuplicated(connection, tools, sinceUs) {
      // Only pins whose mark changes are written: a list showing the same names twice again writes nothing.
      const unchanged = raw(sinceUs === null ? 'duplicated_since_us IS NOT NULL' : 'duplicated_since_us IS NULL');
      const changed: string[] = [];
      for (let i = 0; i < tools.length; i += chunkSize) {
        const chunk = tools.slice(i, i + chunkSize);
        const rows = await db.query(sql`UPDATE tool_pins SET duplicated_since_us = ${sinceUs}
          WHERE connection = ${connection} AND tool IN (${list(chunk)}) AND ${unchanged} RETURNING tool`);
        for (const r of rows) changed.push(String(r.tool));
      }
      return changed;
    },
  };
}

function toolPinFromDb(r: Row): ToolPinRow {
  return {
    connection: String(r.connection),
    tool: String(r.tool),
    digest: strOrNull(r.digest),
    definition: strOrNull(r.definition),
    pendingDigest: strOrNull(r.pending_digest),
    pendingDefinition: strOrNull(r.pending_definition),
    pendingSinceUs: numOrNull(r.pending_since_us),
    removedAtUs: numOrNull(r.removed_at_us),
    pinnedAtUs: num(r.pinned_at_us),
    approvedAtUs: numOrNull(r.approved_at_us),
    approvedBy: strOrNull(r.approved_by),
    reasons: reasonsFromDb(r.reasons),
    pendingReasons: reasonsFromDb(r.pending_reasons),
    duplicatedSinceUs: numOrNull(r.duplicated_since_us),
  };
}

/** Reasons are stored as a JSON array, NULL when there are none. */
const reasonsToDb = (reasons: readonly ToolPinReason[]) => (reasons.length === 0 ? null : JSON.stringify(reasons));
const reasonsFromDb = (v: unknown): ToolPinReason[] => (typeof v === 'string' ? (JSON.parse(v) as ToolPinReason[]) : []);

function toolPinToDb(p: ToolPinRow): Entry[] {
  return [
    ['connection', p.connection],
    ['tool', p.tool],
    ['digest', p.digest],
    ['definition', p.definition],
    ['pending_digest', p.pendingDigest],
    ['pending_definition', p.pendingDefinition],
    ['pending_since_us', p.pendingSinceUs],
    ['removed_at_us', p.removedAtUs],
    ['pinned_at_us', p.pinnedAtUs],
    ['approved_at_us', p.approvedAtUs],
    ['approved_by', p.approvedBy],
    ['reasons', reasonsToDb(p.reasons)],
    ['pending_reasons', reasonsToDb(p.pendingReasons)],
    ['duplicated_since_us', p.duplicatedSinceUs],
  ];
}
