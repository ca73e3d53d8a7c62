import { createHash } from 'node:crypto';

/**
 * The masking corpus: for each detector, secrets and personal data in the surroundings they turn up in (CLI
 * output, env dumps, kubectl, SQL results, logs, JSON), and look-alikes that must be left alone. Secrets are
 * made up here from a seeded generator, so none of them is real and the corpus is the same on every run.
 */

let counter = 0;
/** `n` characters from `alphabet`, deterministic per call order. */
export function fake(n: number, alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'): string {
  let out = '';
  while (out.length < n) {
    const bytes = createHash('sha256').update(`portcullis-corpus-${counter++}`).digest();
    for (const b of bytes) if (out.length < n) out += alphabet[b % alphabet.length];
  }
  return out;
}

const upperDigits = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const b64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+';

/** A positive: `text` holds `secret`, which `detector` must find (and nothing of it may survive masking). */
export interface Positive {
  detector: string;
  secret: string;
  text: string;
}

/** A negative: `text` holds `lookalike`, which must survive masking unchanged. */
export interface Negative {
  lookalike: string;
  text: string;
  why: string;
}

const awsKeyId = `AKIA${fake(16, upperDigits)}`;
const awsSecret = fake(40, b64);
const sessionToken = `IQoJb3JpZ2luX2Vj${fake(300, b64)}`;
const ghp = `ghp_${fake(36)}`;
const ghFine = `github_pat_${fake(22)}_${fake(59)}`;
const ghs = `ghs_${fake(36)}`;
const glpat = `glpat-${fake(20)}`;
const slackBot = `xoxb-${fake(11, '0123456789')}-${fake(12, '0123456789')}-${fake(24)}`;
const slackHook = `https://hooks.slack.com/services/T${fake(8, upperDigits)}/B${fake(8, upperDigits)}/${fake(24)}`;
const stripe = `sk_live_${fake(24)}`;
const google = `AIza${fake(35, 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-')}`;
const openai = `sk-proj-${fake(64, 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-')}`;
const anthropic = `sk-ant-api03-${fake(93, 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-')}AA`;
const npmToken = `npm_${fake(36)}`;
const pemBody = Array.from({ length: 25 }, () => fake(64, b64)).join('\n');
const rsaKey = `-----BEGIN RSA PRIVATE KEY-----\n${pemBody}\n-----END RSA PRIVATE KEY-----`;
const opensshKey = `-----BEGIN OPENSSH PRIVATE KEY-----\n${fake(70, b64)}\n${fake(70, b64)}\n-----END OPENSSH PRIVATE KEY-----`;
const jwt = `${Buffer.from('{"alg":"RS256","typ":"JWT"}').toString('base64url')}.${Buffer.from('{"sub":"ada","exp":2000000000}').toString('base64url')}.${fake(86, 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-')}`;
const dbPassword = `Pg-${fake(14)}!`;

const runnerToken = `GR1348941${fake(20, 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-')}`;
const webhookSecret = `whsec_${fake(32)}`;
const googleSecret = `GOCSPX-${fake(28, 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-')}`;
const bearer = fake(48, 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-');

/** Base64 as tools show it: a Kubernetes secret's data, a base64url value, `base64` output wrapped at 76 columns, base64 in base64. */
const base64 = (text: string) => Buffer.from(text).toString('base64');
const envB64 = base64(`HOME=/home/ci\nGITHUB_TOKEN=${ghp}\n`);
const urlB64 = Buffer.from(`postgres://app:${dbPassword}@db.internal:5432/app`).toString('base64url');
const wrappedB64 = base64(`# deploy settings\nREGION=eu-west-1\nAWS_ACCESS_KEY_ID=${awsKeyId}\nLOG_LEVEL=info\nWORKERS=4\n`).replace(/(.{76})/g, '$1\n');
const nestedB64 = base64(`{"auths":{"registry.example.com":{"auth":"${base64(`ci:${glpat}`)}"}}}`);

export const positives: Positive[] = [
  { detector: 'gitlab-runner-token', secret: runnerToken, text: `gitlab-runner register --registration-token ${runnerToken} --executor docker` },
  { detector: 'stripe-webhook-secret', secret: webhookSecret, text: `STRIPE_WEBHOOK_SECRET=${webhookSecret}` },
  {
    detector: 'google-oauth-client-secret',
    secret: googleSecret,
    text: `{"installed": {"client_id": "1234.apps.googleusercontent.com", "client_secret": "${googleSecret}"}}`,
  },
  { detector: 'bearer-token', secret: bearer, text: `curl -s -H "X-Trace: 1" api.example.com/v1/items  # sent Bearer ${bearer}` },
  { detector: 'aws-access-key-id', secret: awsKeyId, text: `[default]\naws_access_key_id = ${awsKeyId}\n` },
  { detector: 'aws-access-key-id', secret: awsKeyId, text: `{"AccessKey": {"UserName": "ci", "AccessKeyId": "${awsKeyId}", "Status": "Active"}}` },
  { detector: 'aws-secret-access-key', secret: awsSecret, text: `[default]\naws_secret_access_key = ${awsSecret}\nregion = eu-west-1` },
  { detector: 'aws-secret-access-key', secret: awsSecret, text: `{"Credentials": {"SecretAccessKey": "${awsSecret}", "Expiration": "2026-11-25T10:00:00Z"}}` },
  { detector: 'aws-session-token', secret: sessionToken, text: `AWS_SESSION_TOKEN=${sessionToken}` },
  { detector: 'github-token', secret: ghp, text: `HOME=/home/ci\nGITHUB_TOKEN=${ghp}\nPATH=/usr/bin` },
  { detector: 'github-token', secret: ghs, text: `remote: https://x-access-token:${ghs}@github.com/acme/app.git` },
  { detector: 'github-fine-grained-token', secret: ghFine, text: `export GH_TOKEN="${ghFine}"` },
  { detector: 'gitlab-token', secret: glpat, text: `curl --header "PRIVATE-TOKEN: ${glpat}" https://gitlab.example.com/api/v4/projects` },
  { detector: 'slack-token', secret: slackBot, text: `2026-11-25T09:00:01Z INFO slack client ready token=${slackBot}` },
  { detector: 'slack-webhook', secret: slackHook, text: `notify:\n  url: ${slackHook}\n` },
  { detector: 'stripe-key', secret: stripe, text: `STRIPE_SECRET_KEY=${stripe}` },
  { detector: 'google-api-key', secret: google, text: `const maps = new Client({ key: '${google}' });` },
  { detector: 'openai-key', secret: openai, text: `OPENAI_API_KEY=${openai}` },
  { detector: 'anthropic-key', secret: anthropic, text: `{"env": {"ANTHROPIC_API_KEY": "${anthropic}"}}` },
  { detector: 'npm-token', secret: npmToken, text: `//registry.npmjs.org/:_authToken=${npmToken}` },
  { detector: 'private-key', secret: rsaKey, text: `$ cat id_rsa\n${rsaKey}\n$ ` },
  { detector: 'private-key', secret: opensshKey, text: `{"data": {"ssh-privatekey": ${JSON.stringify(opensshKey)}}}` },
  { detector: 'jwt', secret: jwt, text: `GET /api/me HTTP/1.1 cookie: session=${jwt}; theme=dark` },
  { detector: 'url-credentials', secret: dbPassword, text: `DATABASE_URL=postgres://app:${dbPassword}@db.internal:5432/app` },
  { detector: 'url-credentials', secret: 'hunter2pass', text: `mongodb+srv://admin:hunter2pass@cluster0.example.net/test?retryWrites=true` },
  { detector: 'authorization-header', secret: 'dXNlcjpzM2NyM3RwYXNz', text: `> GET /metrics\n> Authorization: Basic dXNlcjpzM2NyM3RwYXNz\n> Accept: */*` },
  { detector: 'password-assignment', secret: 'Tr0ub4dor&3', text: `spring.datasource.password=Tr0ub4dor&3\nspring.datasource.url=jdbc:mysql://db/app` },
  { detector: 'password-assignment', secret: 'correct horse battery', text: `db:\n  user: app\n  password: "correct horse battery"\n` },
  { detector: 'password-assignment', secret: 's3cr3t-v4lue', text: `2026-11-25 10:01:02 DEBUG connecting with client_secret=s3cr3t-v4lue retries=3` },
  { detector: 'payment-card', secret: '4111 1111 1111 1111', text: ` id | customer | card\n  1 | Ada      | 4111 1111 1111 1111\n` },
  { detector: 'payment-card', secret: '5500-0000-0000-0004', text: `{"payment": {"pan": "5500-0000-0000-0004", "exp": "12/28"}}` },
  { detector: 'payment-card', secret: '378282246310005', text: `charge card=378282246310005 amount=12.00` },
  { detector: 'us-ssn', secret: '536-22-8726', text: `name,ssn,dob\nAda Lovelace,536-22-8726,1815-12-10` },
  { detector: 'iban', secret: 'DE89 3704 0044 0532 0130 00', text: `Pay to IBAN DE89 3704 0044 0532 0130 00 by Friday.` },
  { detector: 'iban', secret: 'GB82WEST12345698765432', text: `{"account": {"iban": "GB82WEST12345698765432"}}` },
  { detector: 'email', secret: 'ada.lovelace@example.com', text: `From: Ada <ada.lovelace@example.com>\nSubject: notes` },
  { detector: 'phone-number', secret: '+44 20 7946 0958', text: `Call the on-call engineer at +44 20 7946 0958.` },
  { detector: 'phone-number', secret: '(415) 555-0132', text: `customer phone: (415) 555-0132` },
  // What masking looked past before issue 15: base64 (decoded and replaced whole), keys, lower-case IBANs, labelled SSNs.
  { detector: 'github-token', secret: envB64, text: `apiVersion: v1\nkind: Secret\ndata:\n  env: ${envB64}\ntype: Opaque` },
  { detector: 'url-credentials', secret: urlB64, text: `DATABASE_URL_B64=${urlB64}` },
  { detector: 'aws-access-key-id', secret: wrappedB64.slice(0, 76), text: `$ base64 deploy.env\n${wrappedB64}\n$ ` },
  { detector: 'gitlab-token', secret: nestedB64, text: `{"data": {".dockerconfigjson": "${nestedB64}"}}` },
  { detector: 'email', secret: 'ada.lovelace@example.com', text: `{"owners": {"ada.lovelace@example.com": "admin", "team": "billing"}}` },
  { detector: 'github-token', secret: ghs, text: `{"tokens": {"${ghs}": {"scopes": ["repo"]}}}` },
  { detector: 'iban', secret: 'de89 3704 0044 0532 0130 00', text: `please pay to de89 3704 0044 0532 0130 00 thanks` },
  { detector: 'iban', secret: 'gb82west12345698765432', text: `iban=gb82west12345698765432` },
  { detector: 'us-ssn', secret: '536228726', text: `Applicant: Ada Lovelace, SSN: 536228726, DOB 1815-12-10` },
  { detector: 'us-ssn', secret: '536 22 8726', text: `her social security number is 536 22 8726.` },
  { detector: 'us-ssn', secret: '536228726', text: `{"employee": {"name": "Ada", "ssn": "536228726"}}` },
];

export const negatives: Negative[] = [
  {
    lookalike: 'internationalization',
    text: 'internationalization responsibilities in /usr/local/lib/node_modules/typescript/lib',
    why: 'long words and paths (base64 characters, not base64)',
  },
  {
    lookalike: base64('Content-Type: text/plain; charset=utf-8'),
    text: `header ${base64('Content-Type: text/plain; charset=utf-8')}`,
    why: 'base64 of harmless text',
  },
  {
    lookalike: 'iVBORw0KGgo',
    text: 'icon: data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==',
    why: 'a small PNG as a data URL',
  },
  { lookalike: 'be5609f728403e19', text: '{"span_id": "be5609f728403e19", "trace_flags": 1}', why: 'a lower-case hex span id that passes the IBAN checksum' },
  { lookalike: '536228726', text: 'order 536228726 shipped; tracking 536228726', why: 'nine digits without an SSN label' },
  { lookalike: '536228726', text: '{"id": "536228726", "zip": 941031234}', why: 'nine digits under a key that is not an SSN' },
  { lookalike: 'user:1042:profile', text: '{"cache": {"user:1042:profile": {"ttl": 300}}}', why: 'ordinary keys' },
  { lookalike: '4111 1111 1111 1112', text: 'card 4111 1111 1111 1112 failed Luhn', why: 'a card number that fails Luhn' },
  { lookalike: 'DE89 3704 0044 0532 0130 01', text: 'IBAN DE89 3704 0044 0532 0130 01 (typo)', why: 'an IBAN that fails mod-97' },
  { lookalike: '000-12-3456', text: 'ssn 000-12-3456', why: 'an SSN with area 000' },
  { lookalike: '666-12-3456', text: 'ssn 666-12-3456', why: 'an SSN with area 666' },
  { lookalike: '536-00-8726', text: 'ssn 536-00-8726', why: 'an SSN with group 00' },
  {
    lookalike: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    text: 'sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    why: 'a hex digest',
  },
  { lookalike: '123e4567-e89b-12d3-a456-426614174000', text: '{"requestId": "123e4567-e89b-12d3-a456-426614174000"}', why: 'a UUID' },
  { lookalike: '1764064800123', text: '{"timestamp": 1764064800123, "ts": "1764064800123"}', why: 'a millisecond timestamp' },
  { lookalike: '2026-11-25T10:01:02Z', text: 'created 2026-11-25T10:01:02Z', why: 'a date' },
  {
    lookalike: 'pk_live_51H8abcdefghijklmnop',
    text: 'STRIPE_PUBLISHABLE_KEY=pk_live_51H8abcdefghijklmnop',
    why: 'a Stripe publishable key (public by design)',
  },
  { lookalike: 'AKIA1234', text: 'AKIA1234 is too short to be a key id', why: 'a short AKIA string' },
  { lookalike: 'secretName: db-credentials', text: 'volumes:\n- secret:\n    secretName: db-credentials\n', why: 'a Kubernetes secret reference' },
  { lookalike: 'max_tokens', text: '{"max_tokens": 1024, "token_count": 17}', why: 'token counts' },
  { lookalike: 'password: ********', text: 'password: ********', why: 'an already masked password' },
  { lookalike: 'password=${DB_PASSWORD}', text: 'password=${DB_PASSWORD}', why: 'a template variable' },
  { lookalike: 'v1.32.0', text: 'Client Version: v1.32.0\nServer Version: v1.31.4', why: 'versions' },
  { lookalike: '10.0.0.12', text: 'pod/api-7d9f 1/1 Running 10.0.0.12 node-3', why: 'an IP address (IP detection is opt-in)' },
  { lookalike: 'eyJhbGciOi', text: 'the prefix eyJhbGciOi alone is not a token', why: 'a JWT prefix alone' },
  { lookalike: 'sk-1234', text: 'sk-1234 is not a key', why: 'a short sk- string' },
  {
    lookalike: '-----BEGIN PUBLIC KEY-----',
    text: '-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----',
    why: 'a public key',
  },
];
