import { type Detector, regexDetector } from '../detector.js';

/**
 * Credentials by their context: the password in a URL or connection string (`postgres://user:pass@host`), the
 * value of an Authorization header or a bearer token, and generic assignments (`password=…`, `secret: …`,
 * `api_key = …`) in configuration, logs and command output.
 */
/** A key that names a secret, optionally with a prefix (`db_password`, `MYSQL_ROOT_PASSWORD`, `x-api-key`). */
const secretKey =
  /(?<![A-Za-z0-9])(?:[A-Za-z0-9]{1,32}[_.-]){0,3}(?:password|passwd|passphrase|pwd|secret|api[_.-]?key|access[_.-]?key|auth[_.-]?token|access[_.-]?token|refresh[_.-]?token|client[_.-]?secret|private[_.-]?key)/.source;

/** Values that say there is no secret here: masks, placeholders, template variables. */
const placeholder = /^(?:\*+|x+|<[^>]*>|\$\{[^}]*\}|\$[A-Z_]+|%[A-Za-z_]+%|null|none|true|false|redacted|\[redacted[^\]]*\])$/i;

export const credentialDetectors: Detector[] = [
  regexDetector({
    name: 'url-credentials',
    family: 'credentials',
    category: 'secret',
    confidence: 'high',
    pattern: /[A-Za-z][A-Za-z0-9+.-]{1,31}:\/\/[^\s:/@"'<>]{1,256}:(?<secret>[^\s@/"'<>]{1,256})@/dg,
    anchors: ['://'],
  }),
  regexDetector({
    name: 'authorization-header',
    family: 'credentials',
    category: 'secret',
    confidence: 'high',
    pattern: /(?:proxy-)?authorization["']?[ \t]{0,5}[:=][ \t]{0,5}["']?(?:(?:bearer|basic|token|digest|bot|apikey|negotiate)[ \t]{1,5})?(?<secret>[A-Za-z0-9._~+/=:-]{8,8192})/dgi,
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
  // Quoted and unquoted values are two patterns (one named group each: Node 20 has no duplicate group names).
  ...[
    /(?<q>["'])(?<secret>[^"'\r\n]{1,512})\k<q>/.source,
    /(?<secret>[^\s"',;&<>]{1,512})/.source,
  ].map((value) =>
    regexDetector({
      name: 'password-assignment',
      family: 'credentials',
      category: 'secret',
      confidence: 'medium',
      // key=value, key: value, "key": "value", with the key naming a secret.
      pattern: new RegExp(`${secretKey}["']?[ \\t]{0,5}[:=][ \\t]{0,5}${value}`, 'dgi'),
      anchorsIgnoringCase: ['pass', 'pwd', 'secret', 'key', 'token'],
      validate: (v) => !placeholder.test(v),
    }),
  ),
];
