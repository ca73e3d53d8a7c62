import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import type { OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { OAuthClientInformationMixed, OAuthClientMetadata, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';
import { decodeJwt } from 'jose';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { signInAsUser, startTestIdp, type TestIdp } from '../helpers/idp.js';

/**
 * The MCP authorization spec end to end: the official SDK client, with OAuth configured and no token given,
 * meets the gateway's 401, follows its protected resource metadata to the IdP (oidc-provider), registers itself
 * (dynamic client registration), has the user sign in, gets a token for the connection as its resource, and uses it.
 */

/** An in-memory OAuth client provider, as a host application would write one; the "browser" is the IdP helper. */
class TestOAuthProvider implements OAuthClientProvider {
  client: OAuthClientInformationMixed | undefined;
  saved: OAuthTokens | undefined;
  verifier = '';
  authorizationUrl: URL | undefined;

  get redirectUrl(): string {
    return 'http://127.0.0.1:33418/callback';
  }

  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: 'SDK test host',
      redirect_uris: [this.redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      application_type: 'native',
    } as OAuthClientMetadata;
  }

  clientInformation() {
    return this.client;
  }
  saveClientInformation(info: OAuthClientInformationMixed) {
    this.client = info;
  }
  tokens() {
    return this.saved;
  }
  saveTokens(tokens: OAuthTokens) {
    this.saved = tokens;
  }
  redirectToAuthorization(url: URL) {
    this.authorizationUrl = url;
  }
  saveCodeVerifier(v: string) {
    this.verifier = v;
  }
  codeVerifier() {
    return this.verifier;
  }
}

describe('the SDK client signs in through the protected resource metadata', () => {
  let idp: TestIdp;
  let gw: TestGateway;

  before(async () => {
    idp = await startTestIdp();
    gw = await startTestGateway({
      identity: { issuers: [{ issuer: idp.issuer }] },
      connections: { everything: { stdio: everythingStdio(), access: { groups: ['eng'] } } },
    });
  });
  after(async () => {
    await gw?.stop();
    await idp?.stop();
  });

  it('discovers the IdP, registers, signs the user in, and calls a tool with no token given by hand', async () => {
    const provider = new TestOAuthProvider();
    const first = new StreamableHTTPClientTransport(gw.mcp('everything'), { authProvider: provider });
    const client = new Client({ name: 'sdk-oauth', version: '1.0.0' });
    // The first attempt meets the 401; the SDK walks the metadata, registers and asks the host to open a browser.
    await assert.rejects(client.connect(first), UnauthorizedError);
    assert.ok(provider.client !== undefined, 'registered at the IdP (dynamic client registration)');
    assert.ok(provider.authorizationUrl !== undefined, 'asked to open the sign-in page');
    assert.equal(new URL(provider.authorizationUrl.href).origin, idp.issuer, 'the IdP named by the metadata');
    assert.equal(provider.authorizationUrl.searchParams.get('resource'), `${gw.url}/mcp/everything`, 'asks for a token for this connection');

    const callback = await signInAsUser(provider.authorizationUrl.href, 'ada', idp.issuer);
    assert.ok(callback !== undefined);
    await first.finishAuth(callback.searchParams.get('code')!);
    assert.equal(decodeJwt(provider.saved!.access_token).aud, `${gw.url}/mcp/everything`);

    const transport = new StreamableHTTPClientTransport(gw.mcp('everything'), { authProvider: provider });
    const signedIn = new Client({ name: 'sdk-oauth', version: '1.0.0' });
    await signedIn.connect(transport);
    assert.match(JSON.stringify(await signedIn.callTool({ name: 'echo', arguments: { message: 'oauth' } })), /Echo: oauth/);
    const sessionId = transport.sessionId!;
    await transport.terminateSession();
    await signedIn.close();
    const row = await gw.gateway.recorder!.store.getSession(sessionId);
    assert.equal(row?.subject, 'ada');
    assert.deepEqual(row?.groups, ['eng', 'sre']);
  });
});
