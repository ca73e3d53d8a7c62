import type { Detector, Finding } from '../detector.js';

/**
 * PEM private keys of any type (RSA, EC, DSA, OPENSSH, ENCRYPTED, PKCS#8 …) and any length: from the BEGIN line
 * to its END line. A key whose END is missing (a truncated output) is masked to the end of the string: half a
 * private key is still a secret. Found with indexOf, not a regex, so no input can make it slow.
 */
const begin = '-----BEGIN ';
const endMarker = '-----END ';

function findPrivateKeys(text: string, _lower: () => string, out: Finding[]): void {
  let from = 0;
  for (;;) {
    const start = text.indexOf(begin, from);
    if (start < 0) return;
    const lineEnd = text.indexOf('-----', start + begin.length);
    if (lineEnd < 0) return;
    const label = text.slice(start + begin.length, lineEnd);
    if (!/^(?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?$/.test(label) || label.length > 64) {
      from = start + begin.length;
      continue;
    }
    const endAt = text.indexOf(`${endMarker}${label}-----`, lineEnd);
    const end = endAt < 0 ? text.length : endAt + endMarker.length + label.length + 5;
    out.push({ start, end, detector: 'private-key' });
    from = end;
  }
}

export const pemDetectors: Detector[] = [
  { name: 'private-key', family: 'pem', category: 'secret', confidence: 'high', onByDefault: true, anchors: [begin], find: findPrivateKeys },
];
