import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject, randomBytes, randomFillSync } from 'node:crypto';

/**
 * Envelope encryption of one recorded text: AES-256-GCM under a session's data key, with a fresh 96-bit nonce per
 * value and associated data that names where the value belongs (`aad`), so a ciphertext moved to another event, field
 * or session fails to open. The stored form is text, so it fits the columns plain payloads use and the hash chain
 * covers it as it is stored:
 *
 *   pcx1:<base64 of nonce(12) ‖ ciphertext ‖ tag(16)>
 *
 * A plain payload is JSON (it starts with `{`, `[` or `"`), so the prefix tells the two apart. The format is part of
 * the recording: a change is a new prefix, never an edit.
 */

export const sealedPrefix = 'pcx1:';
const nonceBytes = 12;
const tagBytes = 16;
export const dataKeyBytes = 32;

/** A value that does not open: altered, moved, or opened with another key. Never says more (no oracle). */
export class CiphertextError extends Error {
  constructor(where: string) {
    super(`${where} does not decrypt: it was altered, moved from elsewhere, or its data key is not the one it was sealed with`);
    this.name = 'CiphertextError';
  }
}

export function isSealed(stored: string): boolean {
  return stored.startsWith(sealedPrefix);
}

export function newDataKey(): Buffer {
  return randomBytes(dataKeyBytes);
}

/*
 * The recorder seals every event's payload on its hot path, and two costs there are not the cipher's: importing the
 * raw key into OpenSSL on every createCipheriv (a KeyObject made once per data key avoids it), and asking OpenSSL for
 * 12 random bytes per value (drawn in bulk into a pool instead; every nonce is still fresh CSPRNG output, used once).
 * Together they were two thirds of the time to seal a 300-byte message.
 */
const keyObjects = new WeakMap<Buffer, KeyObject>();
function keyObject(key: Buffer): KeyObject {
  let k = keyObjects.get(key);
  if (k === undefined) {
    k = createSecretKey(key);
    keyObjects.set(key, k);
  }
  return k;
}

/** The data key is destroyed (erased): its OpenSSL copy goes too, so nothing made from it can seal or open again. */
export function dropKeyObject(key: Buffer): void {
  keyObjects.delete(key);
}

const noncePool = Buffer.alloc(nonceBytes * 1024);
let noncePoolAt = noncePool.length;
function freshNonce(): Buffer {
  if (noncePoolAt + nonceBytes > noncePool.length) {
    randomFillSync(noncePool);
    noncePoolAt = 0;
  }
  const nonce = noncePool.subarray(noncePoolAt, noncePoolAt + nonceBytes);
  noncePoolAt += nonceBytes;
  return nonce;
}

export function sealText(key: Buffer, aad: string, plain: string): string {
  const nonce = freshNonce();
  const cipher = createCipheriv('aes-256-gcm', keyObject(key), nonce);
  cipher.setAAD(Buffer.from(aad));
  const body = Buffer.concat([nonce, cipher.update(plain, 'utf8'), cipher.final(), cipher.getAuthTag()]);
  return sealedPrefix + body.toString('base64');
}

/** Opens a sealed value; `where` names it in the error (`session s1 event 4's payload`). */
export function openText(key: Buffer, aad: string, stored: string, where: string): string {
  if (!isSealed(stored)) throw new CiphertextError(where);
  const body = Buffer.from(stored.slice(sealedPrefix.length), 'base64');
  if (body.length < nonceBytes + tagBytes) throw new CiphertextError(where);
  try {
    const decipher = createDecipheriv('aes-256-gcm', keyObject(key), body.subarray(0, nonceBytes));
    decipher.setAAD(Buffer.from(aad));
    decipher.setAuthTag(body.subarray(body.length - tagBytes));
    return Buffer.concat([decipher.update(body.subarray(nonceBytes, body.length - tagBytes)), decipher.final()]).toString('utf8');
  } catch {
    throw new CiphertextError(where);
  }
}

/*
 * Where each encrypted field belongs (its associated data). An event's fields are bound to the session, the event's
 * sequence number and the field; a review's parameters to the review; an access request's reason to the request.
 */
export const eventAad = (sessionId: string, seq: number, field: 'payload' | 'forwarded'): string => `event\0${sessionId}\0${seq}\0${field}`;
export const reviewParamsAad = (reviewId: string): string => `review-params\0${reviewId}`;
export const accessReasonAad = (requestId: string): string => `access-reason\0${requestId}`;

/** The data key owner of a just-in-time access request (a session's data key is owned by the session id). */
export const accessRequestOwner = (requestId: string): string => `access:${requestId}`;
