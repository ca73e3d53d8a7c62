import { phraseRule, type ScanRule } from '../rule.js';

/**
 * Text aimed at the model rather than describing the tool: telling it to drop its instructions, to keep something
 * from the user, to call or read something before using this tool, markup that poses as a system or priority
 * channel, and a new role. Each is a phrase no honest tool description needs; the patterns are kept narrow (checked
 * against the reference servers' real descriptions in the tests) so that a flag means something.
 */

const you = String.raw`(?:you\s+(?:must\s+|should\s+|need\s+to\s+)?|always\s+|first\s+|please\s+)*`;

export const instructionRules: readonly ScanRule[] = [
  phraseRule(
    'override-instructions',
    'instructions',
    'tells the model to set its instructions aside',
    /\b(?:ignore|disregard|forget|override|overrule)\s+(?:all\s+|any\s+)?(?:of\s+)?(?:the\s+|your\s+|these\s+)?(?:previous|prior|above|earlier|preceding|former|original|system|other|existing)\s+(?:instructions?|prompts?|messages?|rules|directions|directives|guidelines|guidance|context)\b/i,
  ),
  phraseRule(
    'hide-from-user',
    'instructions',
    'tells the model to keep something from the user',
    /\b(?:(?:do\s+not|don['’]t|never|must\s+not|should\s+not|shouldn['’]t)\s+(?:tell|mention|inform|notify|alert|reveal|disclose|show|say|let|report|explain)\b[^.!?\n]{0,100}?\buser\b|without\s+(?:telling|informing|notifying|alerting|asking|showing|letting)\s+(?:the\s+)?user\b|(?:hide|conceal|keep)\s+(?:this|it|that|them|these)\s+(?:\w+\s+){0,3}?from\s+(?:the\s+)?user\b|(?:the\s+)?user\s+(?:must|should)\s+(?:not|never)\s+(?:know|see|notice|find\s+out|be\s+told))/i,
  ),
  phraseRule(
    'model-markup',
    'instructions',
    'carries markup that poses as a priority or system channel to the model',
    /<\s*\/?\s*(?:important|system|instructions?|admin|secret|hidden|assistant|sys|system[-_ ]prompt)\s*>|<\|(?:im_start|im_end|system|user|assistant|endoftext)\|>|\[\/?INST\]|<<\/?SYS>>/i,
  ),
  phraseRule(
    'call-first',
    'instructions',
    'tells the model to call or read something before using the tool',
    new RegExp(
      String.raw`\bbefore\s+(?:using|calling|invoking|running|executing|you\s+(?:use|call|invoke|run))\s+(?:this|the|any)\s+(?:tool|function)\b[^.!?\n]{0,80}?\b${you}(?:call|read|run|invoke|use|fetch|open|send|pass|include|execute|access|cat|load)\b|\b(?:must|always)\s+(?:first\s+)?(?:call|read|run|invoke|fetch|open|cat|load)\b[^.!?\n]{0,80}?\bbefore\s+(?:using|calling|invoking|running)\s+(?:this|the)\s+(?:tool|function)\b`,
      'i',
    ),
  ),
  phraseRule(
    'new-role',
    'instructions',
    'gives the model a new role or instructions',
    /\b(?:you\s+are\s+now\b|from\s+now\s+on,?\s+(?:you|always|never)\b|new\s+(?:system\s+)?instructions\s*:|act\s+as\s+(?:if\s+you\s+were\s+)?(?:an?\s+)?(?:system|admin|administrator|root|developer\s+mode)\b)/i,
  ),
];
