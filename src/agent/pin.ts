import { createHash, X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';

/** The SHA-256 of a certificate's public key, base64: what the agent's `tls.pin` is compared with. */
export function publicKeyPin(cert: PeerCertificate): string | undefined {
  if (cert.raw === undefined) return undefined;
  const key = new X509Certificate(cert.raw).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(key).digest('base64');
}
