import { z } from 'zod';
import { type Kek, WrappedKeyError } from '../kek.js';

/**
 * A KEK held by AWS KMS: data keys are wrapped with KMS Encrypt and unwrapped with Decrypt, the key never leaving KMS.
 * The data key's owner is the EncryptionContext (`{ portcullis: <owner> }`), so KMS itself refuses a wrapped key
 * copied onto another owner, and CloudTrail names the session each unwrap was for. The wrapped form is
 * `kms1:<base64 of the CiphertextBlob>`. Credentials come from the SDK's usual chain (environment, shared files, the
 * instance's or pod's role). The SDK is loaded on the first wrap or unwrap, so a config without a KMS key never pays
 * for it. Tests check the requests it sends against a local HTTP server standing in for KMS: no KMS is reachable there.
 */

const prefix = 'kms1:';

export interface AwsKmsKeyConfig {
  /** A key ARN, key id, alias name (`alias/…`) or alias ARN; Decrypt names it too, so no other key is ever tried. */
  keyId: string;
  region: string;
  /** Another endpoint (a VPC endpoint, FIPS, a test server); default: the region's. */
  endpoint?: string;
}

/** The region an ARN names (`arn:aws:kms:eu-west-1:111122223333:key/…`), or undefined for a bare id or alias. */
function regionOfArn(keyId: string): string | undefined {
  const m = /^arn:aws[a-z-]*:kms:([a-z0-9-]+):/.exec(keyId);
  return m?.[1];
}

/** The config value (`awsKms: { keyId, region, endpoint }`); region may be left out when keyId is an ARN. */
export function awsKmsSchema() {
  return z
    .strictObject({
      keyId: z.string().min(1, 'expected the KMS key: its ARN (arn:aws:kms:REGION:ACCOUNT:key/ID), id, or alias/NAME'),
      region: z
        .string()
        .regex(/^[a-z0-9-]+$/, 'expected an AWS region such as eu-west-1')
        .optional(),
      endpoint: z.url({ protocol: /^https?$/, error: 'expected an http(s) URL such as https://kms.eu-west-1.amazonaws.com' }).optional(),
    })
    .transform(({ keyId, region, endpoint }, ctx): AwsKmsKeyConfig => {
      const r = region ?? regionOfArn(keyId);
      if (r === undefined) {
        ctx.addIssue({ code: 'custom', path: ['region'], message: "expected the key's AWS region (eu-west-1): keyId is not an ARN, so it does not say" });
        return z.NEVER;
      }
      return { keyId, region: r, ...(endpoint === undefined ? {} : { endpoint }) };
    });
}

/** What the SDK is given besides the config: tests give static credentials; production leaves the default chain. */
export interface AwsKmsClientOptions {
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

/** Errors by which KMS says this wrapped key is not one this key (with this context) made: tampering, or another key. */
const notThisKey = new Set(['InvalidCiphertextException', 'IncorrectKeyException']);

export function awsKmsKek(id: string, config: AwsKmsKeyConfig, options: AwsKmsClientOptions = {}): Kek {
  type Sdk = typeof import('@aws-sdk/client-kms');
  let loaded: Promise<{ sdk: Sdk; client: InstanceType<Sdk['KMSClient']> }> | undefined;
  const kms = () =>
    (loaded ??= import('@aws-sdk/client-kms').then((sdk) => ({
      sdk,
      client: new sdk.KMSClient({
        region: config.region,
        ...(config.endpoint === undefined ? {} : { endpoint: config.endpoint }),
        ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
      }),
    })));
  const failed = (what: string, owner: string, err: unknown) =>
    new Error(`KEK '${id}' (AWS KMS key ${config.keyId}) could not ${what} the data key of ${owner}: ${(err as Error).name}: ${(err as Error).message}`, {
      cause: err,
    });
  return {
    id,
    provider: 'aws-kms',
    description: `AWS KMS key ${config.keyId} (${config.region}${config.endpoint === undefined ? '' : `, endpoint ${config.endpoint}`})`,
    async wrap(dataKey, owner) {
      const { sdk, client } = await kms();
      let blob: Uint8Array | undefined;
      try {
        ({ CiphertextBlob: blob } = await client.send(
          new sdk.EncryptCommand({ KeyId: config.keyId, Plaintext: dataKey, EncryptionContext: { portcullis: owner } }),
        ));
      } catch (err) {
        throw failed('wrap', owner, err);
      }
      if (blob === undefined || blob.length === 0) throw failed('wrap', owner, new Error('KMS answered without a CiphertextBlob'));
      return prefix + Buffer.from(blob).toString('base64');
    },
    async unwrap(wrapped, owner) {
      if (!wrapped.startsWith(prefix)) throw new WrappedKeyError(owner, id, 'it is not an AWS KMS wrapping');
      const { sdk, client } = await kms();
      let plain: Uint8Array | undefined;
      try {
        ({ Plaintext: plain } = await client.send(
          new sdk.DecryptCommand({
            KeyId: config.keyId,
            CiphertextBlob: Buffer.from(wrapped.slice(prefix.length), 'base64'),
            EncryptionContext: { portcullis: owner },
          }),
        ));
      } catch (err) {
        if (notThisKey.has((err as Error).name)) throw new WrappedKeyError(owner, id);
        throw failed('unwrap', owner, err);
      }
      if (plain === undefined || plain.length !== 32) throw new WrappedKeyError(owner, id, 'KMS did not answer with a 32-byte key');
      return Buffer.from(plain);
    },
  };
}
