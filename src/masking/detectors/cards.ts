import { type Detector, regexDetector } from '../detector.js';

/** Payment card numbers: 13 to 19 digits (spaces or dashes between groups allowed) that pass the Luhn check and start like a card. */

export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

/** Issuer prefixes: Visa 4, Mastercard 51-55 and 2221-2720, Amex 34/37, Discover 6011/65/644-649, JCB 35, Diners 36/38/300-305, UnionPay 62, Maestro 50/56-58/67. */
const issuer = /^(?:4|5[0-8]|2[2-7]|3[4-8]|30|6[0-9])/;

function isCardNumber(candidate: string): boolean {
  const digits = candidate.replace(/[ -]/g, '');
  if (digits.length < 13 || digits.length > 19) return false;
  if (/^(\d)\1+$/.test(digits)) return false;
  return issuer.test(digits) && luhnValid(digits);
}

export const cardDetectors: Detector[] = [
  regexDetector({
    name: 'payment-card',
    family: 'cards',
    category: 'pii',
    confidence: 'high',
    // Not right after an IBAN's country code and check digits (`DE89 3704 …`), whose digits can pass Luhn by chance.
    minLength: 13,
    pattern: /(?<![0-9A-Za-z_.-])(?<![A-Za-z]{2}\d{2} )\d(?:[ -]?\d){12,18}(?![0-9A-Za-z_])/g,
    validate: isCardNumber,
  }),
];
