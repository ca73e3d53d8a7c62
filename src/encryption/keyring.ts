import type { DataKeyRow } from '../store/types.js';
import { dropKeyObject, newDataKey } from './envelope.js';
import { ErasedError, type Kek, KekUnavailableError } from './kek.js';

/**
 * The KEKs this process has (recording.encryption.keys) and the current one, which wraps every new data key. Older
 * ones only unwrap, until `portcullis keys rotate` has re-wrapped their data keys under the current one. Unwrapped
 * data keys are cached (bounded), so reading a session costs one unwrap, and a KMS key one request, not one per event.
 * A cached key is served only for the same stored row (KEK id and wrapping): a row altered since, by rotation or by
 * tampering, is unwrapped again, so a long-running gateway's verify notices a wrapped key changed under it.
 */
export class Keyring {
  readonly #keks: ReadonlyMap<string, Kek>;
  readonly #cache = new Map<string, CachedKey>();

  constructor(
    keks: readonly Kek[],
    readonly current: Kek,
    private readonly cacheSize = 4096,
  ) {
    this.#keks = new Map(keks.map((k) => [k.id, k]));
    if (this.#keks.get(current.id) !== current) throw new Error(`the current KEK '${current.id}' is not among the keyring's KEKs`);
  }

  get keks(): readonly Kek[] {
    return [...this.#keks.values()];
  }

  kek(id: string): Kek | undefined {
    return this.#keks.get(id);
  }

  /** The KEK ids, sorted: what replicas compare. */
  get ids(): string[] {
    return [...this.#keks.keys()].sort();
  }

  /**
   * A new data key for `owner`, and its wrapping under the current KEK: done at once with a local KEK, a promise
   * with a remote one (the recorder writes the session's first batch once it settles).
   */
  newDataKey(owner: string): { key: Buffer; kekId: string; wrapped: string | Promise<string> } {
    const key = newDataKey();
    const kek = this.current;
    const wrapped = kek.wrapSync !== undefined ? kek.wrapSync(key, owner) : kek.wrap(key, owner);
    const cached = this.#remember(owner, { kekId: kek.id, wrapped: typeof wrapped === 'string' ? wrapped : undefined, key });
    // A remote wrapping is known once it settles; until then a read of the row unwraps it (one request).
    if (typeof wrapped !== 'string')
      wrapped.then(
        (w) => void (cached.wrapped = w),
        () => undefined,
      );
    return { key, kekId: kek.id, wrapped };
  }

  /** The data key a stored row wraps; throws ErasedError, KekUnavailableError or WrappedKeyError. */
  async dataKey(row: DataKeyRow): Promise<Buffer> {
    if (row.wrapped === null) throw new ErasedError(row.owner, row.erasedAtUs ?? 0, row.erasedBy, row.eraseReason);
    const cached = this.#cache.get(row.owner);
    if (cached !== undefined && cached.kekId === row.kekId && cached.wrapped === row.wrapped) return cached.key;
    const kek = this.#keks.get(row.kekId);
    if (kek === undefined) throw new KekUnavailableError(row.owner, row.kekId);
    const key = kek.unwrapSync !== undefined ? kek.unwrapSync(row.wrapped, row.owner) : await kek.unwrap(row.wrapped, row.owner);
    // The same bytes as a live session's own key keep its Buffer (and its cached KeyObject): only the row is new.
    const kept = cached?.key.equals(key) ? cached.key : key;
    this.#remember(row.owner, { kekId: row.kekId, wrapped: row.wrapped, key: kept });
    return kept;
  }

  /**
   * Forgets an owner's data key (it was erased): nothing read through this keyring can open its payloads after. The
   * bytes are not overwritten: the same Buffer may be a session's key still recording (a forged or early notice on the
   * change bus must not turn it into an all-zero key that every database reader knows).
   */
  forget(owner: string): void {
    const cached = this.#cache.get(owner);
    if (cached !== undefined) dropKeyObject(cached.key);
    this.#cache.delete(owner);
  }

  #remember(owner: string, entry: CachedKey): CachedKey {
    this.#cache.delete(owner);
    if (this.#cache.size >= this.cacheSize) {
      const oldest = this.#cache.keys().next().value;
      if (oldest !== undefined) this.#cache.delete(oldest);
    }
    this.#cache.set(owner, entry);
    return entry;
  }
}

/** An unwrapped data key and the stored row it came from (or was wrapped into). */
interface CachedKey {
  kekId: string;
  /** Undefined while a remote KEK's wrapping of a new key is in flight. */
  wrapped: string | undefined;
  key: Buffer;
}
