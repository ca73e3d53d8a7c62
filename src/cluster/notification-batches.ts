import type { Logger } from 'pino';
import { type NotificationSigner, notificationEnvelope, signatureBytes } from './notification-signer.js';

/**
 * What is queued on the change bus, as the payloads of as few notifications as it fits in. PostgreSQL refuses a NOTIFY
 * payload of 8000 bytes or more (bytes, not characters: a live view's text need not be ASCII), and one refused payload
 * fails the whole send; so every payload is sized in bytes and kept under the limit, and only a change that cannot fit
 * even alone is left out (and said).
 */

/** The largest payload NOTIFY takes: it must be shorter than 8000 bytes. */
export const maxNotifyBytes = 7999;

/** A change as the bus queues it: its kind, id and, for the consoles' live views, what they show. */
export type QueuedChange = readonly [kind: string, id: string, data?: unknown];

export interface NotificationBatches<T extends QueuedChange> {
  /** In the order of the changes, each at most `maxBytes` bytes. */
  payloads: string[];
  /** Changes too big for a notification even alone: left out, the others sent. */
  tooBig: T[];
}

/**
 * The payloads that carry `changes` from replica `from`, signed when there is a signer. Each change is serialized
 * once and each payload built and signed once: the size of the one being filled is kept as changes are added.
 */
export function notificationBatches<T extends QueuedChange>(
  from: string,
  changes: readonly T[],
  signer: NotificationSigner | undefined,
  maxBytes = maxNotifyBytes,
): NotificationBatches<T> {
  const payloads: string[] = [];
  const tooBig: T[] = [];
  // Each notification has its own time and nonce (a receiver takes a signature once).
  const open = () => {
    const { head, tail } = notificationEnvelope(from, signer !== undefined);
    const empty = Buffer.byteLength(head) + Buffer.byteLength(tail) + (signer === undefined ? 0 : signatureBytes);
    return { head, tail, empty, bytes: empty, changes: [] as string[] };
  };
  const close = (batch: ReturnType<typeof open>) => {
    const body = `${batch.head}${batch.changes.join(',')}${batch.tail}`;
    payloads.push(signer === undefined ? body : signer.sign(body));
  };
  let batch = open();
  for (const change of changes) {
    const json = JSON.stringify(change);
    const bytes = Buffer.byteLength(json);
    if (batch.empty + bytes > maxBytes) {
      tooBig.push(change);
      continue;
    }
    // A comma before every change but the first.
    if (batch.changes.length > 0 && batch.bytes + 1 + bytes > maxBytes) {
      close(batch);
      batch = open();
    }
    batch.bytes += (batch.changes.length > 0 ? 1 : 0) + bytes;
    batch.changes.push(json);
  }
  if (batch.changes.length > 0) close(batch);
  return { payloads, tooBig };
}

/**
 * Says that a change was left out for its size. A live view's event only goes missing from the consoles; a decision
 * (its kind and an id or a name of at most 64 characters: far under the limit) would be noticed by the other replicas
 * only at their reconciliation, so it is an error, never silent.
 */
export function reportTooBig(log: Logger, change: QueuedChange, liveView: boolean): void {
  const [kind, id] = change;
  const fields = { kind, id: id.slice(0, 100), idBytes: Buffer.byteLength(id) };
  if (liveView) log.warn(fields, "a change notification too big to send was dropped: the consoles' live views miss it");
  else log.error(fields, 'a change notification too big to send was dropped: other replicas act on it only at their next reconciliation');
}
