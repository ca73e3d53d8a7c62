/** `postgres://user@host:port/db?schema=name` → pg's connection string and the schema to use (default public). */
export function parsePostgresUrl(url: string): { connectionString: string; schema: string; location: string } {
  const u = new URL(url);
  const schema = u.searchParams.get('schema') ?? 'public';
  if (!/^[a-z_][a-z0-9_]{0,62}$/i.test(schema)) throw new Error(`the store URL's schema ${JSON.stringify(schema)} is not a plain SQL identifier`);
  u.searchParams.delete('schema');
  const location = `postgres://${u.username ? `${decodeURIComponent(u.username)}@` : ''}${u.host}${u.pathname}${schema === 'public' ? '' : ` (schema ${schema})`}`;
  return { connectionString: u.toString(), schema, location };
}
