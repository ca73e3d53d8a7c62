import { isIP } from 'node:net';
import { type Detector, type Finding, regexDetector } from '../detector.js';

const isHex = (c: number) => (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
/** A character that can be part of an IPv6 address (hex digits, colons, and dots of an embedded IPv4 tail). */
const inAddress = (c: number) => isHex(c) || c === 58 || c === 46;

/**
 * IPv6 addresses without a regex: from each colon that sits between address characters, the run of address
 * characters around it is taken whole and checked with node's own parser. Linear in the text.
 */
function findIpv6(text: string, _lower: () => string, out: Finding[]): void {
  let from = 0;
  for (;;) {
    const colon = text.indexOf(':', from);
    if (colon < 0) return;
    // Colons are counted while scanning, so a run that cannot be an address (a time, 10:00:01) costs no allocation.
    let colons = 1;
    let doubled = false;
    let start = colon;
    for (let c = text.charCodeAt(start - 1); start > 0 && inAddress(c); c = text.charCodeAt(--start - 1)) {
      if (c === 58) {
        colons++;
        if (text.charCodeAt(start) === 58) doubled = true;
      }
    }
    let end = colon + 1;
    for (let c = text.charCodeAt(end); end < text.length && inAddress(c); c = text.charCodeAt(++end)) {
      if (c === 58) {
        colons++;
        if (text.charCodeAt(end - 1) === 58) doubled = true;
      }
    }
    from = end;
    // Trailing dots or colons belong to the sentence, not the address.
    while (end > colon + 1 && (text.charCodeAt(end - 1) === 46 || text.charCodeAt(end - 1) === 58)) end--;
    if (end - start < 3 || end - start > 45) continue;
    // An IPv6 address has eight groups, or fewer with `::`: anything else is turned away before the parser.
    if (!doubled && colons < 7) continue;
    const candidate = text.slice(start, end);
    if (isIP(candidate) === 6) out.push({ start, end, detector: 'ipv6-address' });
  }
}

/** IP addresses, v4 and v6. Off unless configured: addresses fill ordinary tool output (kubectl, logs) and are often needed there. */
export const networkDetectors: Detector[] = [
  regexDetector({
    name: 'ipv4-address',
    family: 'network',
    category: 'pii',
    confidence: 'medium',
    onByDefault: false,
    minLength: 7,
    pattern: /(?<![0-9.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![0-9]|\.\d)/g,
    anchors: ['.'],
  }),
  { name: 'ipv6-address', family: 'network', category: 'pii', confidence: 'medium', onByDefault: false, find: findIpv6 },
];
