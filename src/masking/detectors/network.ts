import { isIP } from 'node:net';
import { type Detector, regexDetector } from '../detector.js';

/** IP addresses, v4 and v6. Off unless configured: addresses fill ordinary tool output (kubectl, logs) and are often needed there. */
export const networkDetectors: Detector[] = [
  regexDetector({
    name: 'ipv4-address',
    family: 'network',
    category: 'pii',
    confidence: 'medium',
    onByDefault: false,
    pattern: /(?<![0-9.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![0-9]|\.\d)/g,
    anchors: ['.'],
  }),
  regexDetector({
    name: 'ipv6-address',
    family: 'network',
    category: 'pii',
    confidence: 'medium',
    onByDefault: false,
    pattern: /(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{1,4}:){2,7}[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{1,4}){0,6}(?![0-9A-Fa-f:])/g,
    anchors: [':'],
    validate: (v) => isIP(v) === 6,
  }),
];
