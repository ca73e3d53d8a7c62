import { createPublicKey } from 'node:crypto';
import { z } from 'zod';
import { duration, referenceOnly, resolvedText } from '../core/config-fields.js';
import { resolveSecretString, SecretReferenceError, type SecretSources } from '../core/secrets.js';
import { encryptionSchema } from './encryption-config.js';

/** The recording slice of the config (`recording`). */

/** Public keys given as PEM text or references to PEM files; each must parse as an Ed25519 public key. */
function publicKeys(list: string[], sources: SecretSources, ctx: z.RefinementCtx): string[] {
  const out: string[] = [];
  list.forEach((template, i) => {
    try {
      const pem = resolveSecretString(template, sources).reveal();
      const key = createPublicKey(pem);
      if (key.asymmetricKeyType !== 'ed25519') {
        ctx.addIssue({ code: 'custom', path: [i], message: `expected an Ed25519 public key, found ${key.asymmetricKeyType ?? 'another kind of key'}` });
        return;
      }
      out.push(key.export({ type: 'spki', format: 'pem' }).toString());
    } catch (err) {
      ctx.addIssue({
        code: 'custom',
        path: [i],
        message: err instanceof SecretReferenceError ? err.message : 'expected an Ed25519 public key in PEM form (-----BEGIN PUBLIC KEY-----)',
      });
    }
  });
  return out;
}

export function recordingSchema(sources: SecretSources) {
  return z
    .strictObject({
      /** write-ahead: a message is durable before it is forwarded; best-effort: never blocks, may lose events; off. */
      mode: z.enum(['write-ahead', 'best-effort', 'off']).default('write-ahead'),
      /** SQLite only: `full` fsyncs every group commit (survives power loss); `normal` survives a crash of the gateway. */
      sqliteSync: z.enum(['normal', 'full']).default('normal'),
      /** Closed sessions older than this are deleted, leaving a tombstone; 0 keeps them forever. */
      retention: duration('0'),
      /**
       * What retention does to an expired session: `delete` its rows (a tombstone stays in the ledger), or `erase` it
       * (crypto-shredding: its data key is destroyed, its rows stay and still verify; needs recording.encryption).
       */
      retentionAction: z.enum(['delete', 'erase']).default('delete'),
      /** Envelope encryption of recorded payloads (src/encryption/); absent: recordings are plain. */
      encryption: encryptionSchema(sources).optional(),
      /**
       * A write the store has not confirmed within this fails: write-ahead ends the exchanges waiting on it with
       * the recording error (fail closed) instead of holding them while the store stalls.
       */
      writeTimeout: duration('5s').refine(
        (ms) => ms >= 100 && ms <= 300_000,
        'expected from 100ms to 5m: the longest a message may wait for its recording to become durable',
      ),
      /** The Ed25519 private key (PEM) that seals sessions; default: generated into the data directory. */
      signingKey: referenceOnly(sources, 'a signing key').optional(),
      /** Public keys (PEM, usually `${file:…}`) whose seals verify trusts besides this gateway's own. */
      trustedKeys: z
        .array(z.string())
        .default([])
        .transform((list, ctx) => publicKeys(list, sources, ctx)),
      /**
       * This gateway's id in a shared store; default: generated into the data directory. May be an `${env:NAME}`
       * reference (a Kubernetes pod's name, given in the environment), checked once resolved.
       */
      instanceId: resolvedText(sources)
        .pipe(z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'expected 1-64 letters, digits, ".", "_" or "-" (once its references are resolved)'))
        .optional(),
    })
    .prefault({})
    .superRefine((r, ctx) => {
      if (r.retentionAction === 'erase' && r.encryption === undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['retentionAction'],
          message:
            "erase destroys encrypted recordings' data keys, but recording.encryption is not configured (recordings are plain): configure it, or use delete",
        });
    })
    .transform(({ retention, writeTimeout, ...rest }) => ({ ...rest, retentionMs: retention, writeTimeoutMs: writeTimeout }));
}

export type RecordingConfig = z.output<ReturnType<typeof recordingSchema>>;
