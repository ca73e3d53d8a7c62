/**
 * A key-encryption key (KEK): it wraps and unwraps data keys and never sees a payload. Providers live in keks/, one
 * file each, registered in keks/index.ts (the masking detector catalog's pattern). A wrapped key is text; `context`
 * (the data key's owner: a session id, `access:<id>`) is bound into the wrapping, so a wrapped key copied onto
 * another owner does not unwrap.
 */
export interface Kek {
  /** The id the config gives it; stored beside every data key it wraps. */
  readonly id: string;
  /** Which provider (`local`, `aws-kms`). */
  readonly provider: string;
  /** What it is, for logs and `keys list`: never key material. */
  readonly description: string;
  wrap(dataKey: Buffer, context: string): Promise<string>;
  /** Throws WrappedKeyError when the wrapped key was altered, belongs to another owner, or to another KEK. */
  unwrap(wrapped: string, context: string): Promise<Buffer>;
  /** The same as `wrap`, done before it returns, when the provider can (a local key): the recorder's hot path. */
  readonly wrapSync?: (dataKey: Buffer, context: string) => string;
  /** The same for `unwrap`. */
  readonly unwrapSync?: (wrapped: string, context: string) => Buffer;
}

export class WrappedKeyError extends Error {
  constructor(owner: string, kekId: string, why?: string) {
    super(
      `the data key of ${owner} does not unwrap under KEK '${kekId}'${why ? `: ${why}` : ': the wrapped key was altered, or this KEK is not the key it was wrapped with'}`,
    );
    this.name = 'WrappedKeyError';
  }
}

/** A data key whose KEK this process does not have (reading needs it; verify does not). */
export class KekUnavailableError extends Error {
  constructor(
    owner: string,
    readonly kekId: string,
  ) {
    super(
      `the recording of ${owner} is encrypted under KEK '${kekId}', which this config does not have: add it to recording.encryption.keys to read it (verify needs no key)`,
    );
    this.name = 'KekUnavailableError';
  }
}

/** A data key destroyed by `sessions erase` or retention: its payloads can never be read again. */
export class ErasedError extends Error {
  constructor(
    readonly owner: string,
    readonly erasedAtUs: number,
    readonly erasedBy: string | null,
    readonly reason: string | null,
  ) {
    super(
      `the recording of ${owner} was erased (crypto-shredded) at ${new Date(erasedAtUs / 1000).toISOString()}${erasedBy ? ` by ${erasedBy}` : ''}${reason ? `: ${reason}` : ''}; its payloads can never be read`,
    );
    this.name = 'ErasedError';
  }
}
