import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { format, inspect } from 'node:util';
import { after, describe, it } from 'node:test';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { processSecretSources, resolveSecretString, SecretReferenceError, type SecretSources, SecretString } from '../../src/core/secrets.js';
import { CapturedLog } from '../helpers/gateway.js';

/** Secret references: resolved from the environment or a file, named in errors, and never shown anywhere. */

const dir = mkdtempSync(join(tmpdir(), 'portcullis-secrets-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const tokenValue = 'tok-9f3a-SECRET-VALUE-1';
const fileValue = 'file-7c21-SECRET-VALUE-2';
const tokenFile = join(dir, 'token');
writeFileSync(tokenFile, `${fileValue}\n`);
const crlfFile = join(dir, 'crlf');
writeFileSync(crlfFile, `${fileValue}\r\n`);
const twoLinesFile = join(dir, 'two-lines');
writeFileSync(twoLinesFile, 'line1\nline2\n\n');
const aDirectory = join(dir, 'a-directory');
mkdirSync(aDirectory);

/** Real files, an injected environment. */
const sources: SecretSources = {
  env: { TOKEN: tokenValue, EMPTY: '', HOST: 'mcp.example.com' },
  readFile: processSecretSources.readFile,
};
const allSecretValues = [tokenValue, fileValue];

function assertNoSecret(text: string, where: string): void {
  for (const v of allSecretValues) assert.ok(!text.includes(v), `${where} leaks a secret value: ${text}`);
}

function configProblems(text: string): ConfigError {
  try {
    parseConfig(text, 'secrets.yaml', sources);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err;
  }
  assert.fail('expected a ConfigError');
}

describe('resolveSecretString', () => {
  it('resolves ${env:NAME}', () => {
    const s = resolveSecretString('${env:TOKEN}', sources);
    assert.equal(s.reveal(), tokenValue);
    assert.equal(s.template, '${env:TOKEN}');
    assert.equal(s.hasReferences, true);
  });

  it('resolves a reference inside text, and several references in one string', () => {
    assert.equal(resolveSecretString('Bearer ${env:TOKEN}', sources).reveal(), `Bearer ${tokenValue}`);
    assert.equal(resolveSecretString('https://${env:HOST}/mcp?k=${env:TOKEN}', sources).reveal(), `https://mcp.example.com/mcp?k=${tokenValue}`);
    assert.equal(resolveSecretString(`\${env:TOKEN}:\${file:${tokenFile}}`, sources).reveal(), `${tokenValue}:${fileValue}`);
  });

  it('resolves a variable set to the empty string', () => {
    const s = resolveSecretString('${env:EMPTY}', sources);
    assert.equal(s.reveal(), '');
    assert.equal(s.hasReferences, true);
  });

  it('resolves ${file:PATH} from a real file, dropping one trailing newline', () => {
    assert.equal(resolveSecretString(`\${file:${tokenFile}}`, sources).reveal(), fileValue);
    assert.equal(resolveSecretString(`\${file:${crlfFile}}`, sources).reveal(), fileValue);
    assert.equal(resolveSecretString(`\${file:${twoLinesFile}}`, sources).reveal(), 'line1\nline2\n');
  });

  it('leaves text without references as it is', () => {
    const s = resolveSecretString('plain $HOME {env:X} $env:Y', sources);
    assert.equal(s.reveal(), 'plain $HOME {env:X} $env:Y');
    assert.equal(s.hasReferences, false);
  });

  it('a missing variable names the reference', () => {
    assert.throws(
      () => resolveSecretString('Bearer ${env:NOT_SET_ANYWHERE}', sources),
      (err: unknown) =>
        err instanceof SecretReferenceError && /NOT_SET_ANYWHERE is not set/.test(err.message) && err.message.includes('${env:NOT_SET_ANYWHERE}'),
    );
  });

  it('a missing or unreadable file names the reference and the reason', () => {
    const missing = join(dir, 'nope');
    assert.throws(
      () => resolveSecretString(`\${file:${missing}}`, sources),
      (err: unknown) =>
        err instanceof SecretReferenceError && err.message.includes(`file ${missing} cannot be read (ENOENT)`) && err.message.includes(`\${file:${missing}}`),
    );
    assert.throws(
      () => resolveSecretString(`\${file:${aDirectory}}`, sources),
      (err: unknown) => err instanceof SecretReferenceError && /EISDIR/.test(err.message),
    );
  });

  it('an empty reference and an unknown kind are refused', () => {
    assert.throws(
      () => resolveSecretString('${env:}', sources),
      (err: unknown) => err instanceof SecretReferenceError && /names nothing/.test(err.message),
    );
    assert.throws(
      () => resolveSecretString('${file:}', sources),
      (err: unknown) => err instanceof SecretReferenceError && /names nothing/.test(err.message),
    );
    assert.throws(
      () => resolveSecretString('${vault:kv/x}', sources),
      (err: unknown) => err instanceof SecretReferenceError && /unknown reference kind/.test(err.message),
    );
  });
});

describe('secret references in a config', () => {
  it('resolve in stdio args and env, and in http url and headers', () => {
    const c = parseConfig(
      [
        'connections:',
        '  local:',
        '    stdio:',
        '      command: node',
        `      args: [server.js, "--token=\${env:TOKEN}"]`,
        `      env: {API_KEY: "\${env:TOKEN}", DB_PASSWORD: "\${file:${tokenFile}}", PLAIN: visible}`,
        '  remote:',
        '    http:',
        '      url: "https://${env:HOST}/mcp"',
        `      headers: {Authorization: "Bearer \${env:TOKEN}", X-Api-Key: "\${file:${tokenFile}}"}`,
      ].join('\n'),
      'secrets.yaml',
      sources,
    );
    const local = c.connections.get('local')!.upstream;
    assert.ok(local.kind === 'stdio');
    assert.deepEqual(
      local.args.map((a) => a.reveal()),
      ['server.js', `--token=${tokenValue}`],
    );
    assert.equal(local.env.API_KEY!.reveal(), tokenValue);
    assert.equal(local.env.DB_PASSWORD!.reveal(), fileValue);
    assert.equal(local.env.PLAIN!.reveal(), 'visible');
    const remote = c.connections.get('remote')!.upstream;
    assert.ok(remote.kind === 'http');
    assert.equal(remote.url.reveal(), 'https://mcp.example.com/mcp');
    assert.equal(remote.headers.Authorization!.reveal(), `Bearer ${tokenValue}`);
    assert.equal(remote.headers['X-Api-Key']!.reveal(), fileValue);
    // The parsed config as a whole shows templates, never values.
    assertNoSecret(JSON.stringify({ ...c, connections: [...c.connections] }), 'JSON of the config');
    assertNoSecret(inspect(c, { depth: 10 }), 'inspect of the config');
  });

  it('a missing variable or file names the key path and the reference', () => {
    const missing = join(dir, 'absent');
    const err = configProblems(
      [
        'connections:',
        '  a:',
        '    stdio:',
        '      command: node',
        '      args: ["--token=${env:MISSING_ARG}"]',
        '      env: {API_KEY: "${env:MISSING_VAR}"}',
        '  b:',
        '    http:',
        `      url: "\${env:MISSING_URL}"`,
        `      headers: {Authorization: "\${file:${missing}}"}`,
      ].join('\n'),
    );
    const has = (re: RegExp) =>
      assert.ok(
        err.problems.some((p) => re.test(p)),
        `${re} in\n${err.problems.join('\n')}`,
      );
    has(/^connections\.a\.stdio\.args\.0: environment variable MISSING_ARG is not set/);
    has(/^connections\.a\.stdio\.env\.API_KEY: environment variable MISSING_VAR is not set \(referenced as \$\{env:MISSING_VAR\}\)/);
    has(/^connections\.b\.http\.url: environment variable MISSING_URL is not set/);
    assert.ok(err.problems.some((p) => p.startsWith('connections.b.http.headers.Authorization: ') && p.includes(`file ${missing} cannot be read (ENOENT)`)));
  });

  it('errors never contain a resolved value, even next to resolved secrets', () => {
    const leaky: SecretSources = {
      env: { ...sources.env, URL_FTP: `ftp://user:${tokenValue}@host/x`, URL_JUNK: `junk ${tokenValue}` },
      readFile: sources.readFile,
    };
    let err: unknown;
    try {
      parseConfig(
        [
          'connections:',
          '  a:',
          '    http:',
          '      url: "${env:URL_FTP}"',
          '      headers: {Authorization: "${env:TOKEN}", X-Other: "${env:NOT_SET}"}',
          '  b:',
          '    sse:',
          '      url: "${env:URL_JUNK}"',
          '  c:',
          '    stdio:',
          `      command: node`,
          `      args: ["\${file:${tokenFile}}", "\${env:NOT_SET}"]`,
          `      env: {TOKEN: "\${file:${tokenFile}}", SOME: 5}`,
        ].join('\n'),
        'leaky.yaml',
        leaky,
      );
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof ConfigError);
    assert.ok(err.problems.length >= 4, err.problems.join('\n'));
    assertNoSecret(err.message, 'the error message');
    assertNoSecret(err.problems.join('\n'), 'the problems');
    assertNoSecret(JSON.stringify(err), 'JSON of the error');
    assertNoSecret(inspect(err), 'inspect of the error');
    assertNoSecret(String(err.stack), 'the stack');
  });

  for (const [where, key] of [
    ['header', 'Authorization'],
    ['header', 'Cookie'],
    ['header', 'X-Api-Key'],
    ['header', 'X-Auth-Token'],
    ['env', 'API_KEY'],
    ['env', 'APIKEY'],
    ['env', 'GITHUB_TOKEN'],
    ['env', 'DB_PASSWORD'],
    ['env', 'CLIENT_SECRET'],
    ['env', 'AWS_SECRET_ACCESS_KEY'],
    ['env', 'GOOGLE_APPLICATION_CREDENTIALS'],
    ['env', 'SSH_PRIVATE_KEY'],
  ] as const) {
    it(`a literal value for the credential-looking ${where} ${key} is refused without showing it`, () => {
      const literal = 'literal-hunter2-value';
      const text =
        where === 'header'
          ? `connections:\n  a:\n    http:\n      url: "http://127.0.0.1:1/mcp"\n      headers: {${key}: "${literal}"}\n`
          : `connections:\n  a:\n    stdio:\n      command: node\n      env: {${key}: "${literal}"}\n`;
      const err = configProblems(text);
      const path = where === 'header' ? `connections.a.http.headers.${key}` : `connections.a.stdio.env.${key}`;
      assert.ok(
        err.problems.some((p) => p.startsWith(`${path}: `) && /looks like a credential/.test(p) && p.includes('${env:NAME}')),
        err.problems.join('\n'),
      );
      assert.ok(!err.message.includes(literal));
    });
  }

  it('a credential-looking key with a reference, and an ordinary key with a literal, are accepted', () => {
    const c = parseConfig(
      'connections:\n  a:\n    http:\n      url: "http://127.0.0.1:1/mcp"\n      headers: {Authorization: "Bearer ${env:TOKEN}", X-Tenant: acme, Accept-Language: en}\n',
      'ok.yaml',
      sources,
    );
    const up = c.connections.get('a')!.upstream;
    assert.ok(up.kind === 'http');
    assert.equal(up.headers['X-Tenant']!.reveal(), 'acme');
    assert.equal(up.headers.Authorization!.hasReferences, true);
  });
});

describe('SecretString never shows its value', () => {
  const secret = resolveSecretString('Bearer ${env:TOKEN}', sources);
  const fromFile = resolveSecretString(`\${file:${tokenFile}}`, sources);

  it('reveal() is the only way to the value', () => {
    assert.equal(secret.reveal(), `Bearer ${tokenValue}`);
    assert.equal(fromFile.reveal(), fileValue);
  });

  it('JSON.stringify shows the template, alone or nested', () => {
    assert.equal(JSON.stringify(secret), '"Bearer ${env:TOKEN}"');
    const nested = JSON.stringify({ headers: { Authorization: secret }, list: [fromFile] });
    assertNoSecret(nested, 'nested JSON');
    assert.ok(nested.includes('${env:TOKEN}'));
  });

  it('String(), concatenation and template literals show the template', () => {
    assert.equal(String(secret), 'Bearer ${env:TOKEN}');
    assert.equal(`${secret}`, 'Bearer ${env:TOKEN}');
    assert.equal('' + secret, 'Bearer ${env:TOKEN}');
    assert.equal([secret, fromFile].join(','), `Bearer \${env:TOKEN},\${file:${tokenFile}}`);
  });

  it('util.inspect and util.format show the template', () => {
    assert.equal(inspect(secret), 'SecretString("Bearer ${env:TOKEN}")');
    for (const text of [
      inspect({ deep: { deeper: { s: secret } } }, { depth: Infinity }),
      inspect(secret, { customInspect: false, showHidden: true }),
      inspect(new Map([['k', fromFile]])),
      format('%s %o %O %j %s', secret, secret, secret, secret, [fromFile]),
    ]) {
      assertNoSecret(text, 'inspect/format');
    }
  });

  it('spreading, Object.entries and structuredClone copy no value', () => {
    assertNoSecret(JSON.stringify({ ...secret }), 'spread');
    assertNoSecret(JSON.stringify(Object.entries(secret)), 'entries');
    assertNoSecret(inspect(structuredClone(secret)), 'structuredClone');
    assertNoSecret(JSON.stringify(Object.getOwnPropertyNames(secret).map((k) => (secret as unknown as Record<string, unknown>)[k])), 'own properties');
  });

  it('a pino log line shows the template', () => {
    const log = new CapturedLog('info');
    log.logger.info({ authorization: secret, upstream: { headers: { 'X-Api-Key': fromFile }, args: [secret] } }, 'connecting with %s', secret);
    log.logger.info({ secret }, `template ${secret}`);
    assert.equal(log.lines.length, 2);
    assertNoSecret(log.text, 'the log');
    assert.ok(log.text.includes('${env:TOKEN}'), 'the template is logged');
  });

  it('a SecretString built directly keeps its value private too', () => {
    const s = new SecretString('${env:X}', 'direct-SECRET-VALUE-3', true);
    for (const text of [JSON.stringify(s), String(s), inspect(s), format('%s %j', s, s)]) assert.ok(!text.includes('direct-SECRET-VALUE-3'));
    assert.equal(s.reveal(), 'direct-SECRET-VALUE-3');
  });
});
