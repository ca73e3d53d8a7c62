import { pino } from 'pino';
import type { SigningKey } from '../../src/recording/keys.js';
import type { RecorderOptions } from '../../src/recording/recorder-options.js';
import { Recorder, type SessionChain } from '../../src/recording/recorder.js';
import { openingDetails } from '../../src/recording/session-facts.js';
import { nowUs } from '../../src/recording/time.js';
import type { Store } from '../../src/store/store.js';
import { openSessionRow } from '../../src/store/types.js';
import { testSigner } from './encryption.js';
import type { TestStore } from './stores.js';

/**
 * Recorders on one test store, each on a connection of its own as separate gateways are, write-ahead and quiet, that
 * neither heart-beat nor sweep by themselves unless told to; closed together, and the store destroyed, by `destroy`.
 */
export class RecorderPeers {
  readonly #stores: Store[] = [];
  readonly #recorders: Recorder[] = [];

  constructor(private readonly ts: TestStore) {}

  async store(): Promise<Store> {
    const store = await this.ts.open();
    this.#stores.push(store);
    return store;
  }

  async start(o: Omit<RecorderOptions, 'store' | 'mode' | 'log'>): Promise<Recorder> {
    const hour = 3_600_000;
    const r = await Recorder.start({
      store: await this.store(),
      mode: 'write-ahead',
      log: pino({ level: 'silent' }),
      sweepMs: hour,
      heartbeatMs: hour,
      recoversOthers: () => false,
      ...o,
    });
    this.#recorders.push(r);
    return r;
  }

  async destroy(): Promise<void> {
    for (const r of this.#recorders) await r.close();
    for (const s of this.#stores) await s.close();
    await this.ts.destroy();
  }
}

/** Opens a session as a gateway does (its row, its opening event) with a first message queued after it. */
export function openLive(r: Recorder, id: string): SessionChain {
  const row = openSessionRow({ id, instanceId: r.instanceId, connection: 'c', subject: 's', openedAtUs: nowUs() });
  const chain = r.openSession(row);
  r.append(chain, 'open', null, null, JSON.stringify(openingDetails(row)));
  r.append(chain, 'message', 'toServer', 'received', '{"jsonrpc":"2.0","id":1,"method":"ping"}');
  return chain;
}

/** A signing key for each name (one a gateway), and the trusted keys that verify what any of them sealed. */
export function testSigners<K extends string>(...names: K[]): { keys: Record<K, SigningKey>; trusted: Map<string, string> } {
  const signers = names.map((name) => [name, testSigner()] as const);
  return {
    keys: Object.fromEntries(signers.map(([name, s]) => [name, s.key])) as Record<K, SigningKey>,
    trusted: new Map(signers.flatMap(([, s]) => [...s.trusted])),
  };
}
