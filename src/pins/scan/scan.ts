import type { ToolPinReason } from '../../store/pin-types.js';
import { builtInScanRules } from './catalog.js';
import type { ScanContext, ScannedText, ScanRule } from './rule.js';

/**
 * The poisoning scan of one tool definition (as pinned: name, description, input schema, annotations): every rule
 * over every text it reads, as reasons. An empty list means nothing looked wrong, not that the tool is safe.
 */

/** At most this many reasons per definition, and per rule: enough to judge, bounded however hostile the server. */
const maxReasons = 20;
const maxPerRule = 3;
/** Schema keywords whose strings are machinery, not text the model reads as language. */
const schemaKeywords = new Set([
  'type',
  'format',
  'pattern',
  '$schema',
  '$ref',
  '$id',
  '$anchor',
  '$dynamicRef',
  '$dynamicAnchor',
  'contentEncoding',
  'contentMediaType',
]);

/** The strings of a definition and where they are. */
export function definitionTexts(definition: Record<string, unknown>): ScannedText[] {
  const out: ScannedText[] = [];
  if (typeof definition.name === 'string') out.push({ field: 'name', text: definition.name, kind: 'name' });
  if (typeof definition.description === 'string') out.push({ field: 'description', text: definition.description, kind: 'prose' });
  const walk = (value: unknown, field: string, key: string | undefined) => {
    if (typeof value === 'string')
      out.push({ field, text: value, kind: key === 'required' || (key !== undefined && schemaKeywords.has(key)) ? 'name' : 'prose' });
    else if (Array.isArray(value)) value.forEach((v, i) => walk(v, `${field}[${i}]`, key));
    else if (value !== null && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) {
        out.push({ field: `${field}.${k} (key)`, text: k, kind: 'name' });
        walk(v, `${field}.${k}`, k);
      }
    }
  };
  walk(definition.inputSchema, 'inputSchema', undefined);
  walk(definition.annotations, 'annotations', undefined);
  return out;
}

/** What a model reads: compatibility forms folded, invisible characters dropped, whitespace collapsed. */
export function plainText(text: string): string {
  return text
    .normalize('NFKC')
    .replace(/[\p{Cf}\u115f\u1160\u17b4\u17b5\u3164\uffa0\u034f\ufe00-\ufe0f\u{e0100}-\u{e01ef}]/gu, '')
    .replace(/\s+/g, ' ');
}

/** Scans a definition; `rules` defaults to every built-in rule. */
export function scanDefinition(definition: Record<string, unknown>, context: ScanContext, rules: readonly ScanRule[] = builtInScanRules): ToolPinReason[] {
  const reasons: ToolPinReason[] = [];
  const perRule = new Map<string, number>();
  for (const text of definitionTexts(definition)) {
    let plain: string | undefined;
    for (const rule of rules) {
      if (rule.reads === 'prose' && text.kind !== 'prose') continue;
      if ((perRule.get(rule.name) ?? 0) >= maxPerRule) continue;
      plain ??= plainText(text.text);
      const hit = rule.check(text, plain, context);
      if (hit === undefined) continue;
      perRule.set(rule.name, (perRule.get(rule.name) ?? 0) + 1);
      reasons.push({ rule: rule.name, field: text.field.slice(0, 200), message: hit.message, ...(hit.connections ? { connections: hit.connections } : {}) });
      if (reasons.length >= maxReasons) return reasons;
    }
  }
  return reasons;
}
