import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** A throw-away schema on the machine's PostgreSQL for the recording benchmark (PORTCULLIS_BENCH_POSTGRES). */
export async function benchPostgresStore(): Promise<{ url: string; drop(): Promise<void> }> {
  const base = process.env.PORTCULLIS_BENCH_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';
  const schema = `pc_bench_${randomBytes(4).toString('hex')}`;
  return {
    url: `${base}${base.includes('?') ? '&' : '?'}schema=${schema}`,
    drop: async () => {
      const client = new pg.Client({ connectionString: base });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await client.end();
    },
  };
}

/**
 * `cluster.secret` for bench gateways that share one PostgreSQL store (a replica refuses to start beside another
 * without it): a reference to an environment variable the gateways inherit, set here once per run.
 */
export function benchClusterSecret(): string {
  process.env.PORTCULLIS_BENCH_CLUSTER_SECRET ??= randomBytes(32).toString('base64url');
  return '${env:PORTCULLIS_BENCH_CLUSTER_SECRET}';
}
