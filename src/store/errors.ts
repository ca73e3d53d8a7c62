/** The store cannot take writes (disk full, database down, locked): recording fails closed. */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

/** The store has no Portcullis schema yet, or one newer than this version understands. */
export class StoreSchemaError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreSchemaError';
  }
}

/** PostgreSQL's SQLSTATEs for a transaction rolled back as it collided with a concurrent one: a deadlock, a serialization failure. */
const conflictCodes = new Set(['40P01', '40001']);

/**
 * Whether a store error is a transaction PostgreSQL rolled back for colliding with a concurrent one (wrapped by the
 * store as StoreUnavailableError, the driver's error its cause): nothing of it was written, and the store is fine.
 */
export function isTransactionConflict(err: unknown): boolean {
  const cause = (err as { cause?: unknown } | undefined)?.cause;
  const code = (cause as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && conflictCodes.has(code);
}
