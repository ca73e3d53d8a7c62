import type { ScanRule } from './rule.js';
import { crossReferenceRules } from './rules/cross-references.js';
import { exfiltrationRules } from './rules/exfiltration.js';
import { instructionRules } from './rules/instructions.js';
import { invisibleRules } from './rules/invisible.js';

/** Every rule of the poisoning scan, one line per family (docs/guardrails.md lists them). */
export const builtInScanRules: readonly ScanRule[] = [...invisibleRules, ...instructionRules, ...exfiltrationRules, ...crossReferenceRules];
