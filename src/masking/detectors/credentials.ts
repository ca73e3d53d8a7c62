import { type Detector, pivotDetector, regexDetector, scanBack } from '../detector.js';

const isLetter = (c: number) => (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
const isSchemeChar = (c: number) => isLetter(c) || (c >= 48 && c <= 57) || c === 43 || c === 46 || c === 45;

/**
 * Credentials by their context: the password in a URL or connection string (`postgres://user:pass@host`), the
 * value of an Authorization header or a bearer token, and generic assignments (`password=…`, `secret: …`,
 * `api_key = …`) in configuration, logs and command output.
 */
/**
 * A word that names a secret, wherever it ends a key (`db_password`, `MYSQL_ROOT_PASSWORD`, `x-api-key`): the
 * pattern starts with these words, not with the key's prefix, so the regex engine can skip to them.
 */
const secretKey =
  /(?:password|passwd|passphrase|pwd|secret|api[_.-]?key|access[_.-]?key|auth[_.-]?token|access[_.-]?token|refresh[_.-]?token|client[_.-]?secret|private[_.-]?key)/
    .source;

/** Values that say there is no secret here: masks, placeholders, template variables. */
const placeholder = /^(?:\*+|x+|<[^>]*>|\$\{[^}]*\}|\$[A-Z_]+|%[A-Za-z_]+%|null|none|true|false|redacted|\[redacted[^\]]*\])$/i;

export const credentialDetectors: Detector[] = [
  pivotDetector({
    name: 'url-credentials',
    family: 'credentials',
    category: 'secret',
    confidence: 'high',
    pivot: '://',
    // The scheme before `://`: a letter, then letters, digits, +, . or -.
    back: (text, at) => scanBack(text, at, isSchemeChar, 32, isLetter),
    forward: /:\/\/[^\s:/@"'<>]{1,256}:(?<secret>[^\s@/"'<>]{1,256})@/dy,
  }),
  regexDetector({
    name: 'authorization-header',
    family: 'credentials',
    category: 'secret',
    confidence: 'high',
    pattern:
      /(?:proxy-)?authorization["']?[ \t]{0,5}[:=][ \t]{0,5}["']?(?:(?:bearer|basic|token|digest|bot|apikey|negotiate)[ \t]{1,5})?(?<secret>[A-Za-z0-9._~+/=:-]{8,8192})/dgi,
    anchorsIgnoringCase: ['authorization'],
  }),
  regexDetector({
    name: 'bearer-token',
    family: 'credentials',
    category: 'secret',
    confidence: 'medium',
    pattern: /(?<![A-Za-z0-9])bearer[ \t]{1,5}(?<secret>[A-Za-z0-9._~+/-]{16,8192}=*)/dgi,
    anchorsIgnoringCase: ['bearer'],
  }),
  regexDetector({
    name: 'password-assignment',
    family: 'credentials',
    category: 'secret',
    confidence: 'medium',
    // key=value, key: value, "key": "value", with the key naming a secret; a quoted value is masked inside its quotes.
    pattern: new RegExp(`${secretKey}["']?[ \\t]{0,5}[:=][ \\t]{0,5}(?<secret>"[^"\\r\\n]{1,512}"|'[^'\\r\\n]{1,512}'|[^\\s"',;&<>]{1,512})`, 'dgi'),
    // Every word of secretKey, spelled out (plain `api` or `access` would be found in every URL and log line).
    anchorsIgnoringCase: ['pass', 'pwd', 'secret', 'token', ...['api', 'access', 'private'].flatMap((w) => ['', '_', '-', '.'].map((sep) => `${w}${sep}key`))],
    trimQuotes: true,
    validate: (v) => !placeholder.test(v),
  }),
];
