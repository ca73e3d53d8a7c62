import { type Detector, regexDetector } from '../detector.js';

/**
 * US Social Security numbers written AAA-GG-SSSS. Numbers that were never issued are turned away: area 000, 666
 * or 900-999, group 00, serial 0000, and the well-known advertising numbers.
 */
const neverIssued = new Set(['078-05-1120', '219-09-9999', '123-45-6789']);

function isSsn(v: string): boolean {
  const [area, group, serial] = v.split('-') as [string, string, string];
  if (area === '000' || area === '666' || area.startsWith('9')) return false;
  if (group === '00' || serial === '0000') return false;
  return !neverIssued.has(v);
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
];
