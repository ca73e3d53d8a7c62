import { type Detector, regexDetector } from '../detector.js';

/** Google API keys (AIza…), and OAuth client secrets (GOCSPX-). */
export const googleDetectors: Detector[] = [
  regexDetector({
    name: 'google-api-key',
    family: 'google',
    category: 'secret',
    confidence: 'high',
    pattern: /(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{35}(?![A-Za-z0-9_-])/g,
    anchors: ['AIza'],
  }),
  regexDetector({
    name: 'google-oauth-client-secret',
    family: 'google',
    category: 'secret',
    confidence: 'high',
    pattern: /(?<![A-Za-z0-9_-])GOCSPX-[A-Za-z0-9_-]{28}(?![A-Za-z0-9_-])/g,
    anchors: ['GOCSPX-'],
  }),
];
