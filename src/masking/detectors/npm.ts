import { type Detector, regexDetector } from '../detector.js';

/** npm access tokens (npm_ and 36 characters), and the `_authToken=` lines of an .npmrc. */
export const npmDetectors: Detector[] = [
  regexDetector({
    name: 'npm-token',
    family: 'npm',
    category: 'secret',
    confidence: 'high',
    pattern: /(?<![A-Za-z0-9_])npm_[A-Za-z0-9]{36}(?![A-Za-z0-9_])/g,
    anchors: ['npm_'],
  }),
  regexDetector({
    name: 'npm-token',
    family: 'npm',
    category: 'secret',
    confidence: 'high',
    pattern: /_authToken[ \t]{0,5}=[ \t]{0,5}(?<secret>[^\s"']{8,512})/dg,
    anchors: ['_authToken'],
  }),
];
