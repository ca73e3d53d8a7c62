import { phraseRule, type ScanRule } from '../rule.js';

/**
 * Cues that a description wants data carried off: credential files and keys named (what a poisoned "add two
 * numbers" asks the model to read and pass along), a file's contents to be passed in an argument, and data to be
 * sent to a literal e-mail address. A tool that honestly works on such files says so in its own parameters,
 * not by naming a user's private key.
 */

export const exfiltrationRules: readonly ScanRule[] = [
  phraseRule(
    'credential-files',
    'exfiltration',
    'names credential files or keys',
    /(?:~|\$HOME|%USERPROFILE%|\/home\/[^/\s]{1,64}|\/root)[/\\]\.(?:ssh|aws|gnupg|kube|docker|azure|netrc|npmrc|pypirc|git-credentials|config[/\\]gcloud|cursor)\b|\bid_(?:rsa|dsa|ecdsa|ed25519)\b|\b(?:mcp|claude_desktop_config)\.json\b|\/etc\/(?:passwd|shadow|sudoers)\b|\.aws[/\\]credentials\b/i,
  ),
  phraseRule(
    'pass-contents',
    'exfiltration',
    "tells the model to pass a file's contents along",
    /\b(?:pass|put|include|send|add|append|attach|embed)\s+(?:its|the|their|this|that|the\s+file['’]s|the\s+entire|all\s+(?:of\s+)?(?:its|the))\s+(?:full\s+|entire\s+|whole\s+)?(?:contents?|text)\s+(?:as|in|into|to|inside|with)\b/i,
  ),
  phraseRule(
    'send-to-address',
    'exfiltration',
    'tells the model to send something to a fixed address',
    /\b(?:send|forward|copy|bcc|cc|upload|post|report|e-?mail|mail)\b[^.!?\n]{0,60}?\bto\s+[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63})+/i,
  ),
];
