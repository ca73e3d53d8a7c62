import type { DatabasePort } from './port.js';
import { sql } from './sql.js';

/** The gateway's shared token key, kept in the store when the config sets none (cluster.tokenKeys). */
export interface TokenKeyStore {
  /** The stored key; `candidate` is stored and returned when there is none yet (the first replica's wins a race). */
  sharedTokenKey(candidate: string, nowUs: number): Promise<string>;
}

export function tokenKeyStore(db: DatabasePort): TokenKeyStore {
  return {
    async sharedTokenKey(candidate, nowUs) {
      await db.run(sql`INSERT INTO token_keys (id, secret, created_at_us) VALUES ('current', ${candidate}, ${nowUs}) ON CONFLICT (id) DO NOTHING`);
      const [row] = await db.query(sql`SELECT secret FROM token_keys WHERE id = 'current'`);
      if (row === undefined) throw new Error('the shared token key could not be read back from the store');
      return String(row.secret);
    },
  };
}
