import { type Detector, regexDetector } from '../detector.js';

/** Contact data: e-mail addresses and phone numbers (international E.164, and North American formats). */
export const contactDetectors: Detector[] = [
  regexDetector({
    name: 'email',
    family: 'contact',
    category: 'pii',
    confidence: 'high',
    pattern: /(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.){1,8}[A-Za-z]{2,24}(?![A-Za-z0-9-])/g,
    anchors: ['@'],
  }),
  regexDetector({
    name: 'phone-number',
    family: 'contact',
    category: 'pii',
    confidence: 'medium',
    pattern: /(?<![0-9A-Za-z+])(?:\+[1-9]\d{0,2}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]?\d{2,4}){1,3}|\(\d{3}\) ?\d{3}[.-]\d{4}|\d{3}[.-]\d{3}[.-]\d{4})(?![0-9A-Za-z])/g,
    validate: (v) => {
      const digits = v.replace(/\D/g, '');
      return digits.length >= 10 && digits.length <= 15;
    },
  }),
];
