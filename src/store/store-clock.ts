import { raw, type Sql } from './sql.js';

/**
 * The store's clock, in µs since the epoch, as SQL. Heartbeats are written and judged by it, so that whether a
 * replica is alive does not depend on how far its clock, or the judge's, is from the others'.
 */
export function storeNowUs(dialect: 'sqlite' | 'postgres'): Sql {
  return raw(
    dialect === 'postgres' ? '(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::BIGINT' : "CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)",
  );
}
