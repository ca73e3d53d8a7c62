import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import { checkEndpoint, isInternalAddress } from '../../src/identity/endpoint-policy.js';
import { runCli } from '../helpers/cli.js';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { discoveryDocument, type ScriptedServer, startScriptedServer } from '../helpers/hostile-discovery.js';
import { newRsaKey, type SigningKey } from '../helpers/idp.js';
import { mcpHeaders } from '../helpers/raw-http.js';

/**
 * Requests to addresses nobody chose: a discovery document (or a gateway's metadata) is someone else's text, and must
 * not send the gateway or the CLI to another host, a cloud metadata address, or the caller's own network. Hostile
 * documents are served by real servers; a canary server on another port counts whoever was sent to it.
 */

const initialize = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } },
});

describe("the gateway's OIDC discovery", () => {
  let idp: ScriptedServer;
  let canary: ScriptedServer;
  let key: SigningKey;
  const gateways: TestGateway[] = [];

  const token = async (issuer: string) =>
    new SignJWT({ groups: ['eng'] })
      .setProtectedHeader({ alg: 'RS256', kid: key.kid })
      .setIssuer(issuer)
      .setSubject('ada')
      .setAudience('portcullis')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(key.privateJwk);

  async function gatewayFor(endpointHosts?: string[]): Promise<TestGateway> {
    const gw = await startTestGateway(
      {
        identity: { issuers: [{ issuer: idp.url, audiences: ['portcullis'], ...(endpointHosts ? { endpointHosts } : {}) }] },
        connections: { everything: { stdio: everythingStdio(), access: { groups: ['eng'] } } },
      },
      { issuerTimings: { discoveryRetryMs: 0 } },
    );
    gateways.push(gw);
    return gw;
  }

  const open = async (gw: TestGateway) => {
    const res = await fetch(gw.mcp('everything'), {
      method: 'POST',
      headers: { ...mcpHeaders, authorization: `Bearer ${await token(idp.url)}` },
      body: initialize,
    });
    await res.text();
    return res.status;
  };

  before(async () => {
    idp = await startScriptedServer();
    canary = await startScriptedServer();
    key = newRsaKey();
    canary.routes.set('/keys', { keys: [key.publicJwk] });
  });
  after(async () => {
    for (const gw of gateways) await gw.stop();
    await idp?.stop();
    await canary?.stop();
  });

  it('refuses a jwks_uri on another host (here another port of this machine): 503, and the key set is never fetched', async () => {
    idp.routes.set('/.well-known/openid-configuration', discoveryDocument(idp.url, { jwks_uri: `${canary.url}/keys` }));
    const gw = await gatewayFor();
    assert.equal(await open(gw), 503);
    assert.deepEqual(canary.requests, [], 'nothing was sent to the address the document named');
    const failed = gw.log.lines.find((l) => l.msg === 'OIDC discovery failed');
    assert.match(
      String(failed?.err),
      new RegExp(
        `jwks_uri is on "${canary.host}", not on the issuer's host "${idp.host}"; if that host is the IdP's, list it under identity\\.issuers\\[\\]\\.endpointHosts`,
      ),
    );
  });

  it('refuses link-local, private and plain-http endpoints', async () => {
    const gw = await gatewayFor();
    for (const [jwks, why] of [
      ['http://169.254.169.254/latest/meta-data/keys', /jwks_uri is on "169\.254\.169\.254", not on the issuer's host/],
      ['http://127.0.0.1/keys', /jwks_uri is on "127\.0\.0\.1", not on the issuer's host/],
      ['https://169.254.169.254/keys', /jwks_uri is on "169\.254\.169\.254", not on the issuer's host/],
      ['https://10.0.0.7/keys', /jwks_uri is on "10\.0\.0\.7"/],
      ['https://[fe80::1]/keys', /jwks_uri is on "\[fe80::1\]"/],
    ] as const) {
      idp.routes.set('/.well-known/openid-configuration', discoveryDocument(idp.url, { jwks_uri: jwks }));
      const before = gw.log.lines.length;
      assert.equal(await open(gw), 503, jwks);
      assert.match(String(gw.log.lines.slice(before).find((l) => l.msg === 'OIDC discovery failed')?.err), why);
    }
  });

  it('follows an endpoint host the config names (identity.issuers[].endpointHosts)', async () => {
    idp.routes.set('/.well-known/openid-configuration', discoveryDocument(idp.url, { jwks_uri: `${canary.url}/keys` }));
    const gw = await gatewayFor([canary.host]);
    assert.equal(await open(gw), 200);
    assert.ok(canary.requests.some((r) => r.path === '/keys'));
  });
});

describe("the console's sign-in discovery", () => {
  it('never sends the browser, nor the client secret, to endpoints on another host', async () => {
    const idp = await startScriptedServer();
    const canary = await startScriptedServer();
    idp.routes.set(
      '/.well-known/openid-configuration',
      discoveryDocument(idp.url, { authorization_endpoint: `${canary.url}/auth`, token_endpoint: `${canary.url}/token` }),
    );
    process.env.PORTCULLIS_TEST_CONSOLE_SECRET = 'console-secret-for-the-hostile-idp';
    const gw = await startTestGateway({
      identity: {
        issuers: [
          { issuer: idp.url, clientId: 'portcullis-cli', console: { clientId: 'portcullis-console', clientSecret: '${env:PORTCULLIS_TEST_CONSOLE_SECRET}' } },
        ],
      },
      connections: { everything: { stdio: everythingStdio(), access: { groups: ['eng'] } } },
    });
    try {
      const res = await fetch(new URL(`/auth/login?issuer=${encodeURIComponent(idp.url)}`, gw.url), { redirect: 'manual' });
      assert.equal(res.status, 502);
      assert.equal(res.headers.get('location'), null, 'the browser is not sent anywhere');
      assert.match(await res.text(), /authorization_endpoint is on .*not on the issuer(&#39;|')s host/);
      assert.deepEqual(canary.requests, []);
    } finally {
      delete process.env.PORTCULLIS_TEST_CONSOLE_SECRET;
      await gw.stop();
      await idp.stop();
      await canary.stop();
    }
  });
});

describe('portcullis login: the issuer and endpoints a gateway names', () => {
  let gateway: ScriptedServer;
  let idp: ScriptedServer;
  let canary: ScriptedServer;
  let home: string;

  /** The hostile gateway's metadata: it names `issuer` (and its endpoint hosts) for `portcullis login` to follow. */
  const names = (issuer: string, endpointHosts?: string[]) =>
    gateway.routes.set('/.well-known/oauth-protected-resource', {
      resource: gateway.url,
      authorization_servers: [issuer],
      portcullis_clients: { [issuer]: { client_id: 'portcullis-cli', scopes: ['openid'], ...(endpointHosts ? { endpoint_hosts: endpointHosts } : {}) } },
    });
  const login = (...args: string[]) =>
    runCli(['login', '--gateway', gateway.url, '--no-browser', ...args], { env: { PORTCULLIS_HOME: home }, timeoutMs: 60_000 });

  before(async () => {
    gateway = await startScriptedServer();
    idp = await startScriptedServer();
    canary = await startScriptedServer();
    home = mkdtempSync(join(tmpdir(), 'portcullis-login-hostile-'));
  });
  after(async () => {
    await gateway?.stop();
    await idp?.stop();
    await canary?.stop();
    rmSync(home, { recursive: true, force: true });
  });

  for (const [issuer, why] of [
    ['https://169.254.169.254/realms/x', /it is on 169\.254\.169\.254, an address on this machine or a private or link-local network/],
    ['https://10.20.30.40', /it is on 10\.20\.30\.40/],
    ['https://[fd00::5]/idp', /it is on \[fd00::5\]/],
    ['http://idp.example.com', /which is not https/],
  ] as const) {
    it(`refuses the issuer ${issuer} the gateway names, before any request to it`, async () => {
      names(issuer);
      const run = await login();
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, new RegExp(`the gateway at ${gateway.url} names the identity provider "${issuer.replace(/[[\].]/g, '\\$&')}"`));
      assert.match(run.stderr, why);
      assert.match(run.stderr, /name it yourself with --issuer and --client-id, or --config/);
    });
  }

  it('login --device: refuses a device endpoint on another address, and sends it nothing', async () => {
    // A gateway on loopback may name an IdP on loopback (the tests' own setup); its endpoints stay on that IdP.
    names(idp.url);
    idp.routes.set(
      '/.well-known/openid-configuration',
      discoveryDocument(idp.url, { device_authorization_endpoint: `${canary.url}/device`, token_endpoint: `${canary.url}/token` }),
    );
    const run = await login('--device');
    assert.equal(run.code, 1, run.stderr);
    assert.match(
      run.stderr,
      new RegExp(
        `is not used: its discovery document's (token_endpoint|device_authorization_endpoint) is on "${canary.host}", not on the issuer's host "${idp.host}"`,
      ),
    );
    assert.deepEqual(canary.requests, [], 'no device code was asked for at the address the document named');
    assert.ok(
      idp.requests.some((r) => r.path === '/.well-known/openid-configuration'),
      'the IdP itself was asked',
    );
  });

  it('login --device: refuses a link-local device endpoint', async () => {
    names(idp.url);
    idp.routes.set('/.well-known/openid-configuration', discoveryDocument(idp.url, { device_authorization_endpoint: 'http://169.254.169.254/device' }));
    const run = await login('--device');
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /device_authorization_endpoint is on "169\.254\.169\.254", not on the issuer's host/);
  });

  it('an endpoint host the gateway lists must still be a public address', async () => {
    names(idp.url, ['169.254.169.254']);
    idp.routes.set('/.well-known/openid-configuration', discoveryDocument(idp.url, { device_authorization_endpoint: 'https://169.254.169.254/device' }));
    const run = await login('--device');
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /its device_authorization_endpoint is on 169\.254\.169\.254, an address on this machine or a private or link-local network/);
  });

  it('--issuer named by the user is theirs to choose', async () => {
    names('https://10.20.30.40');
    idp.routes.set('/.well-known/openid-configuration', discoveryDocument(idp.url, { device_authorization_endpoint: `${canary.url}/device` }));
    // The user names the IdP on loopback: no check of the gateway's say; its endpoints are still held to its host.
    const run = await login('--device', '--issuer', idp.url, '--client-id', 'portcullis-cli');
    assert.equal(run.code, 1, run.stderr);
    assert.doesNotMatch(run.stderr, /names the identity provider/);
    assert.match(run.stderr, /device_authorization_endpoint is on/);
  });
});

describe('endpoint policy', () => {
  it('endpointHosts takes host names with an optional port, and a config error names the key', () => {
    const config = (endpointHosts: unknown) =>
      stringify({
        identity: { issuers: [{ issuer: 'https://accounts.example.com', endpointHosts }] },
        connections: { x: { stdio: { command: 'true' }, access: { groups: ['*'] } } },
      });
    assert.deepEqual(parseConfig(config(['oauth2.example.com', 'keys.example.com:8443']), '(test)').identity.issuers[0]!.endpointHosts, [
      'oauth2.example.com',
      'keys.example.com:8443',
    ]);
    assert.throws(
      () => parseConfig(config(['https://oauth2.example.com/token']), '(test)'),
      /identity\.issuers\.0\.endpointHosts\.0: expected a host name, optionally with :port/,
    );
  });

  it('knows the internal address ranges', () => {
    for (const a of [
      '127.0.0.1',
      '10.1.2.3',
      '172.16.0.1',
      '172.31.255.255',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '::1',
      '::',
      'fd00::1',
      'fe80::1',
      '::ffff:127.0.0.1',
      '::ffff:169.254.169.254',
      new URL('https://[::ffff:169.254.169.254]/').hostname,
      '64:ff9b::a9fe:a9fe',
      '2002:a00:1::1',
    ]) {
      assert.ok(isInternalAddress(a), a);
    }
    for (const a of ['8.8.8.8', '172.32.0.1', '2001:4860:4860::8888', '93.184.216.34']) assert.ok(!isInternalAddress(a), a);
  });

  it('holds endpoints to the issuer host and port, or the listed hosts', () => {
    const policy = { issuer: 'https://accounts.example.com', endpointHosts: ['oauth2.example.com', 'keys.example.com:8443'] };
    assert.equal(checkEndpoint('jwks_uri', 'https://accounts.example.com/keys', policy).host, 'accounts.example.com');
    assert.equal(checkEndpoint('token_endpoint', 'https://oauth2.example.com/token', policy).host, 'oauth2.example.com');
    assert.equal(checkEndpoint('jwks_uri', 'https://keys.example.com:8443/k', policy).host, 'keys.example.com:8443');
    assert.throws(() => checkEndpoint('jwks_uri', 'https://keys.example.com/k', policy), /not on the issuer's host/);
    assert.throws(() => checkEndpoint('jwks_uri', 'https://accounts.example.com:8443/k', policy), /not on the issuer's host/);
    assert.throws(() => checkEndpoint('jwks_uri', 'https://accounts.example.com.evil.example/k', policy), /not on the issuer's host/);
    assert.throws(() => checkEndpoint('jwks_uri', 'http://accounts.example.com/k', policy), /is not https/);
    assert.throws(() => checkEndpoint('jwks_uri', 42, policy), /has no jwks_uri/);
  });
});
