import { type Detector, regexDetector } from '../detector.js';

/**
 * International bank account numbers: a country code, two check digits, the country's length, and the mod-97 check,
 * in upper or lower case (`de89 3704 …` as people type it), grouped by fours or not. Lower case lets more strings be
 * tried (a lower-case hex id shaped like one), so two more checks turn look-alikes away: the letters are all of one
 * case, and where a country's account part is all digits (most of Europe) it must be.
 */

/** IBAN length by country (ISO 13616 registry). */
const lengths: Record<string, number> = {
  AD: 24,
  AE: 23,
  AL: 28,
  AT: 20,
  AZ: 28,
  BA: 20,
  BE: 16,
  BG: 22,
  BH: 22,
  BR: 29,
  BY: 28,
  CH: 21,
  CR: 22,
  CY: 28,
  CZ: 24,
  DE: 22,
  DK: 18,
  DO: 28,
  EE: 20,
  EG: 29,
  ES: 24,
  FI: 18,
  FO: 18,
  FR: 27,
  GB: 22,
  GE: 22,
  GI: 23,
  GL: 18,
  GR: 27,
  GT: 28,
  HR: 21,
  HU: 28,
  IE: 22,
  IL: 23,
  IQ: 23,
  IS: 26,
  IT: 27,
  JO: 30,
  KW: 30,
  KZ: 20,
  LB: 28,
  LC: 32,
  LI: 21,
  LT: 20,
  LU: 20,
  LV: 21,
  MC: 27,
  MD: 24,
  ME: 22,
  MK: 19,
  MR: 27,
  MT: 31,
  MU: 30,
  NL: 18,
  NO: 15,
  PK: 24,
  PL: 28,
  PS: 29,
  PT: 25,
  QA: 29,
  RO: 24,
  RS: 22,
  SA: 24,
  SC: 31,
  SE: 24,
  SI: 19,
  SK: 24,
  SM: 27,
  ST: 25,
  SV: 28,
  TL: 23,
  TN: 24,
  TR: 26,
  UA: 29,
  VA: 22,
  VG: 24,
  XK: 20,
};

/** Countries whose account part (after the check digits) is digits only (ISO 13616 registry). */
const numericAccount = new Set([
  'AE',
  'AT',
  'BA',
  'BE',
  'CZ',
  'DE',
  'DK',
  'EE',
  'ES',
  'FI',
  'FO',
  'GL',
  'HR',
  'HU',
  'IL',
  'LT',
  'ME',
  'NO',
  'PL',
  'PT',
  'RS',
  'SE',
  'SI',
  'SK',
  'TL',
  'TN',
  'XK',
]);

export function ibanValid(candidate: string): boolean {
  const compact = candidate.replace(/ /g, '');
  if (/[a-z]/.test(compact) && /[A-Z]/.test(compact)) return false;
  const iban = compact.toUpperCase();
  if (lengths[iban.slice(0, 2)] !== iban.length) return false;
  if (numericAccount.has(iban.slice(0, 2)) && !/^\d+$/.test(iban.slice(4))) return false;
  const rearranged = iban.slice(4) + iban.slice(0, 4);
  let remainder = 0;
  for (const ch of rearranged) {
    const code = ch.charCodeAt(0);
    const value = code >= 65 ? String(code - 55) : ch;
    for (const digit of value) remainder = (remainder * 10 + (digit.charCodeAt(0) - 48)) % 97;
  }
  return remainder === 1;
}

export const ibanDetectors: Detector[] = [
  regexDetector({
    name: 'iban',
    family: 'iban',
    category: 'pii',
    confidence: 'high',
    minLength: 15,
    pattern: /(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]{4}){2,7}(?: ?[A-Za-z0-9]{1,3})?(?![A-Za-z0-9])/g,
    validate: ibanValid,
  }),
];
