import { type Detector, regexDetector } from '../detector.js';

/** GitLab tokens: personal, project and group access (glpat-), deploy (gldt-), runner (glrt-), pipeline trigger (glptt-), and the rest of the gl*- family. */
export const gitlabDetectors: Detector[] = [
  regexDetector({
    name: 'gitlab-token',
    family: 'gitlab',
    category: 'secret',
    confidence: 'high',
    pattern: /(?<![A-Za-z0-9_-])gl(?:pat|dt|rt|ptt|cbt|oas|ft|imt|agent|soat|ffct)-[A-Za-z0-9_-]{20,255}(?![A-Za-z0-9_-])/g,
    anchors: ['glpat-', 'gldt-', 'glrt-', 'glptt-', 'glcbt-', 'gloas-', 'glft-', 'glimt-', 'glagent-', 'glsoat-', 'glffct-'],
  }),
  regexDetector({
    name: 'gitlab-runner-token',
    family: 'gitlab',
    category: 'secret',
    confidence: 'high',
    pattern: /(?<![A-Za-z0-9_-])GR1348941[A-Za-z0-9_-]{20,255}(?![A-Za-z0-9_-])/g,
    anchors: ['GR1348941'],
  }),
];
