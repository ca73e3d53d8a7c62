import { type Detector, regexDetector } from '../detector.js';

/**
 * US Social Security numbers: written AAA-GG-SSSS anywhere, and as nine digits (or AAA GG SSSS) only next to a
 * label that says what they are (`SSN: 536228726`, `social security number is …`, the value of a JSON key such as
 * `ssn` or `employee_ssn`): nine digits alone are order numbers, ids and amounts far more often. Numbers that were
 * never issued are turned away: area 000, 666 or 900-999, group 00, serial 0000, and the well-known advertising
 * numbers.
 */
const neverIssued = new Set(['078-05-1120', '219-09-9999', '123-45-6789']);

/** Whether nine digits (with or without separators) could be an issued SSN. */
function isSsn(v: string): boolean {
  const digits = v.replace(/[ -]/g, '');
  if (!/^\d{9}$/.test(digits)) return false;
  const area = digits.slice(0, 3);
  const group = digits.slice(3, 5);
  const serial = digits.slice(5);
  if (area === '000' || area === '666' || area.startsWith('9')) return false;
  if (group === '00' || serial === '0000') return false;
  return !neverIssued.has(`${area}-${group}-${serial}`);
}

/**
 * A JSON key naming an SSN: lower-cased without `-`, `_`, `.` and spaces, it ends with `ssn` or names a social
 * security number. (The engine asks once per key it sees and remembers the answer.)
 */
function isSsnKey(key: string): boolean {
  if (key.length < 3 || key.length > 40) return false;
  const k = key.toLowerCase().replace(/[-_. ]/g, '');
  return k.endsWith('ssn') || /socialsecurity(?:number|num|no)?$/.test(k);
}

/** A JSON value under such a key: nine digits as a string (AAA-GG-SSSS, AAA GG SSSS or run together) or as a number (leading zeros lost). */
function ssnValue(value: string | number): boolean {
  if (typeof value === 'number') return Number.isInteger(value) && value > 0 && value < 1e9 && isSsn(String(value).padStart(9, '0'));
  const v = value.trim();
  return v.length >= 9 && v.length <= 11 && /^\d{3}([ -]?)\d{2}\1\d{4}$/.test(v) && isSsn(v);
}

export const ssnDetectors: Detector[] = [
  regexDetector({
    name: 'us-ssn',
    family: 'ssn',
    category: 'pii',
    confidence: 'high',
    minLength: 11,
    pattern: /(?<![0-9A-Za-z-])\d{3}-\d{2}-\d{4}(?![0-9A-Za-z-])/g,
    anchors: ['-'],
    validate: isSsn,
  }),
  {
    ...regexDetector({
      name: 'us-ssn',
      family: 'ssn',
      category: 'pii',
      confidence: 'high',
      minLength: 12,
      // The label, a few characters of punctuation (`: `, `="`, ` #`), perhaps `is` or `number`, then the digits.
      pattern:
        /(?<![A-Za-z0-9])(?:ssn|social[ _-]?security(?:[ _-]?(?:number|num|no))?)s?[^0-9A-Za-z\r\n]{0,6}(?:(?:is|was|number|num|no)[^0-9A-Za-z\r\n]{1,6})?(?<secret>\d{3}([ -]?)\d{2}\2\d{4})(?![0-9A-Za-z])/dgi,
      anchorsIgnoringCase: ['ssn', 'social'],
      validate: isSsn,
    }),
    underKey: { key: isSsnKey, value: ssnValue },
  },
];
