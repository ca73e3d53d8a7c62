import { type Detector, regexDetector } from '../detector.js';

/** JSON Web Tokens (and JWS in compact form): three base64url parts whose first decodes to a JOSE header. */

function isJoseHeader(token: string): boolean {
  const head = token.slice(0, token.indexOf('.'));
  try {
    const header = JSON.parse(Buffer.from(head, 'base64url').toString('utf8')) as unknown;
    return header !== null && typeof header === 'object' && typeof (header as { alg?: unknown }).alg === 'string';
  } catch {
    return false;
  }
}

export const jwtDetectors: Detector[] = [
  regexDetector({
    name: 'jwt',
    family: 'jwt',
    category: 'secret',
    confidence: 'high',
    pattern: /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{5,4096}\.eyJ[A-Za-z0-9_-]{2,65536}\.[A-Za-z0-9_-]{0,8192}/g,
    anchors: ['eyJ'],
    validate: isJoseHeader,
  }),
];
