import { type Detector, regexDetector } from '../detector.js';

/** GitHub tokens: classic personal (ghp_), OAuth (gho_), user-to-server (ghu_), server-to-server app (ghs_), refresh (ghr_), fine-grained (github_pat_). */
export const githubDetectors: Detector[] = [
  regexDetector({
    name: 'github-token',
    family: 'github',
    category: 'secret',
    confidence: 'high',
    pattern: /(?<![A-Za-z0-9_])gh[pousr]_[A-Za-z0-9]{36,251}(?![A-Za-z0-9_])/g,
    anchors: ['ghp_', 'gho_', 'ghu_', 'ghs_', 'ghr_'],
  }),
  regexDetector({
    name: 'github-fine-grained-token',
    family: 'github',
    category: 'secret',
    confidence: 'high',
    pattern: /(?<![A-Za-z0-9_])github_pat_[A-Za-z0-9_]{60,251}(?![A-Za-z0-9_])/g,
    anchors: ['github_pat_'],
  }),
];
