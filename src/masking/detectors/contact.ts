import { type Detector, pivotDetector, regexDetector, scanBack } from '../detector.js';

const isAlnum = (c: number) => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
/** Letters, digits and . _ % + - */
const isLocalChar = (c: number) => isAlnum(c) || c === 46 || c === 95 || c === 37 || c === 43 || c === 45;

/** A phone number has 10 to 15 digits. */
function phoneDigits(v: string): boolean {
  const digits = v.replace(/\D/g, '').length;
  return digits >= 10 && digits <= 15;
}

/** Contact data: e-mail addresses and phone numbers (international E.164, and North American formats). */
export const contactDetectors: Detector[] = [
  pivotDetector({
    name: 'email',
    family: 'contact',
    category: 'pii',
    confidence: 'high',
    pivot: '@',
    // The local part before the @: up to 64 of letters, digits and . _ % + -, beginning with a letter or digit.
    back: (text, at) => scanBack(text, at, isLocalChar, 64, isAlnum),
    forward: /@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.){1,8}[A-Za-z]{2,24}(?![A-Za-z0-9-])/y,
  }),
  // Two patterns under one name: international numbers start with +, a rare character to look for first.
  regexDetector({
    name: 'phone-number',
    family: 'contact',
    category: 'pii',
    confidence: 'medium',
    // The look-behind comes after the `+`, not before it: the same condition, but the regex engine skips to each
    // `+` first instead of testing the look-behind at every position.
    pattern: /\+(?<![0-9A-Za-z+]\+)[1-9]\d{0,2}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]?\d{2,4}){1,3}(?![0-9A-Za-z])/g,
    anchors: ['+'],
    minLength: 11,
    validate: phoneDigits,
  }),
  regexDetector({
    name: 'phone-number',
    family: 'contact',
    category: 'pii',
    confidence: 'medium',
    minLength: 12,
    // As above, the look-behind follows the first character: the engine skips to a digit or `(` before testing it.
    pattern: /(?:\((?<![0-9A-Za-z+]\()\d{3}\) ?\d{3}[.-]\d{4}|\d(?<![0-9A-Za-z+]\d)\d{2}[.-]\d{3}[.-]\d{4})(?![0-9A-Za-z])/g,
    validate: phoneDigits,
  }),
];
