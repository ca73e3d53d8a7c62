import { type Detector, regexDetector } from '../detector.js';

/** Slack: bot, user, app and config tokens (xox?-, xapp-), and incoming webhook URLs. */
export const slackDetectors: Detector[] = [
  regexDetector({
    name: 'slack-token',
    family: 'slack',
    category: 'secret',
    confidence: 'high',
    pattern: /(?<![A-Za-z0-9-])(?:xox[abposre]|xapp)-[A-Za-z0-9-]{10,250}(?![A-Za-z0-9-])/g,
    anchors: ['xox', 'xapp-'],
  }),
  regexDetector({
    name: 'slack-webhook',
    family: 'slack',
    category: 'secret',
    confidence: 'high',
    pattern: /https:\/\/hooks\.slack\.com\/(?:services|workflows|triggers)\/[A-Za-z0-9_/+-]{20,250}/g,
    anchors: ['hooks.slack.com'],
  }),
];
