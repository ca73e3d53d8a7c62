import { createHash } from 'node:crypto';
import { canonicalJson } from '../protocol/canonical-json.js';

/**
 * What an approval is bound to: SHA-256 (hex) of the method and the canonical params, without `_meta` (a progress
 * token says nothing about what the call does). Two calls with other arguments never share a digest.
 */
export function requestDigest(method: string, params: Record<string, unknown> | undefined): string {
  const { _meta: _ignored, ...rest } = params ?? {};
  return createHash('sha256')
    .update(canonicalJson({ method, params: rest }))
    .digest('hex');
}
