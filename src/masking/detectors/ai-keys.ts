import { type Detector, regexDetector } from '../detector.js';

/** AI providers' API keys: OpenAI (sk-, sk-proj-, sk-svcacct-, sk-admin-) and Anthropic (sk-ant-…). */
export const aiKeyDetectors: Detector[] = [
  regexDetector({
    name: 'anthropic-key',
    family: 'ai-keys',
    category: 'secret',
    confidence: 'high',
    pattern: /(?<![A-Za-z0-9_-])sk-ant-(?:api|admin|sid|oat)\d{2}-[A-Za-z0-9_-]{40,250}(?![A-Za-z0-9_-])/g,
    anchors: ['sk-ant-'],
  }),
  regexDetector({
    name: 'openai-key',
    family: 'ai-keys',
    category: 'secret',
    confidence: 'high',
    // Project, service account and admin keys by their prefix; classic keys by the marker every one carries.
    pattern: /(?<![A-Za-z0-9_-])sk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,250}|[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20})(?![A-Za-z0-9_-])/g,
    anchors: ['sk-'],
  }),
];
