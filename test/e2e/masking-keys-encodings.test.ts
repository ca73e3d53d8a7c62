import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { fixturePath } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { allEvents } from '../helpers/recorded.js';
import { waitFor } from '../helpers/wait.js';
import { wireTap } from '../helpers/wire-tap.js';
import { leakyResponses, type Leaks } from '../fixtures/leaky-server.js';

/**
 * Masking of what it used to look past, end to end: a real stdio server (test/fixtures/leaky-server.ts) sends
 * secrets and personal data as JSON keys, base64 and base64url text, wrapped base64, and resource blobs (text,
 * and a PNG whose text chunk holds a card number) through the gateway to the official SDK client. Neither the
 * client's copy (its results and the raw wire) nor the recording read back from the store holds any planted
 * value, raw or encoded; masked blobs stay valid base64 (the SDK client checks), and a clean binary passes as sent.
 */

const leaks: Leaks = {
  email: 'ada.lovelace@example.com',
  otherEmail: 'grace.hopper@example.com',
  token: `ghp_${'Lk9'.repeat(12)}`,
  awsKeyId: `AKIA${'Q3'.repeat(8)}`,
  dbPassword: 'Sup3r-Secret-Pg',
  card: '4111 1111 1111 1111',
};
const answers = leakyResponses(leaks);
const decoded = (blob: string) => Buffer.from(blob, 'base64').toString('utf8');

/** Every planted value, and every encoded form the server sent it in (each line of the wrapped one). */
const forbidden: string[] = [
  ...Object.values(leaks),
  ...answers.encoded.content.flatMap((c) => c.text.split(/\s+/).filter((w) => w.length >= 16)),
  answers.resources['leaky://env.bin']!.blob,
  answers.resources['leaky://photo.png']!.blob,
];

describe('masking keys, base64 text and blobs through the gateway', () => {
  let gw: TestGateway;
  let dir: string;
  let sessionId: string;
  const tap = wireTap();
  const got: Record<string, unknown> = {};

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-leaky-'));
    writeFileSync(join(dir, 'leaks.json'), JSON.stringify(leaks));
    gw = await startTestGateway({
      connections: { leaky: { stdio: { command: process.execPath, args: [fixturePath('leaky-server.js'), join(dir, 'leaks.json')] } } },
    });
    const transport = new StreamableHTTPClientTransport(gw.mcp('leaky'), { fetch: tap.fetch, requestInit: { headers: gw.auth } });
    const client = new Client({ name: 'masking-keys-encodings', version: '1.0.0' });
    await client.connect(transport);
    sessionId = transport.sessionId!;
    for (const name of ['owners', 'encoded', 'attachment']) got[name] = await client.callTool({ name, arguments: {} });
    for (const uri of Object.keys(answers.resources)) got[uri] = await client.readResource({ uri });
    await transport.terminateSession();
    await client.close();
    await tap.settled();
  });

  after(async () => {
    await gw?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the client received no planted value, raw or encoded, in its results or on the wire', () => {
    const results = JSON.stringify(got);
    const wire = tap.received.join('\n');
    for (const value of forbidden) {
      assert.ok(!results.includes(value), `${value.slice(0, 12)}… reached the client`);
      assert.ok(!wire.includes(value), `${value.slice(0, 12)}… is on the wire`);
    }
  });

  it('keys are masked, and two keys that mask the same stay two', () => {
    const owners = got.owners as { structuredContent: { owners: Record<string, string> }; content: Array<{ text: string }> };
    assert.deepEqual(owners.structuredContent.owners, { '[REDACTED:email]': 'admin', '[REDACTED:email] #2': 'viewer', team: 'billing' });
    const inText = JSON.parse(owners.content[0]!.text) as { owners: Record<string, string>; tokens: Record<string, string[]> };
    assert.deepEqual(Object.values(inText.owners).sort(), ['admin', 'viewer']);
    assert.deepEqual(inText.tokens, { '[REDACTED:github-token]': ['repo'] });
  });

  it('base64 text is replaced where it held a finding, the rest of the text kept', () => {
    const [secret, wrapped] = (got.encoded as { content: Array<{ text: string }> }).content;
    assert.equal(secret!.text, 'kind: Secret\ndata:\n  env: [REDACTED:github-token]\n  url: [REDACTED:url-credentials]\n');
    assert.equal(wrapped!.text, '$ base64 deploy.env\n[REDACTED:aws-access-key-id]\n$ ');
  });

  it('blobs holding a finding are replaced by the marker as valid base64 and said to be text; a clean one passes as sent', () => {
    const blobOf = (uri: string) => (got[uri] as { contents: Array<{ blob: string; mimeType: string }> }).contents[0]!;
    assert.deepEqual([decoded(blobOf('leaky://env.bin').blob), blobOf('leaky://env.bin').mimeType], ['[REDACTED:github-token]', 'text/plain']);
    assert.deepEqual([decoded(blobOf('leaky://photo.png').blob), blobOf('leaky://photo.png').mimeType], ['[REDACTED:payment-card]', 'text/plain']);
    assert.deepEqual(blobOf('leaky://clean.png'), { uri: 'leaky://clean.png', ...answers.resources['leaky://clean.png'] });
    const embedded = (got.attachment as { content: Array<{ resource: { blob: string; mimeType: string } }> }).content[0]!.resource;
    assert.deepEqual([decoded(embedded.blob), embedded.mimeType], ['[REDACTED:github-token]', 'text/plain']);
  });

  it('the recording, read back from the store, holds no planted value and says where each was masked', async () => {
    const store = gw.gateway.recorder!.store;
    const events = await allEvents(store, sessionId);
    const text = JSON.stringify(events);
    for (const value of forbidden) assert.ok(!text.includes(value), `the recording holds ${value.slice(0, 12)}…`);
    const paths = events
      .filter((e) => e.kind === 'verdict')
      .flatMap((e) => (JSON.parse(e.payload) as { details?: { redactions?: Array<{ path: string }> } }).details?.redactions ?? [])
      .map((r) => r.path);
    assert.ok(paths.includes('$.result.structuredContent.owners<key>'), paths.join('\n'));
    assert.ok(paths.includes('$.result.contents[0].blob<base64>'), paths.join('\n'));
    assert.ok(paths.includes('$.result.content[0].text<base64>'), paths.join('\n'));
    // Five answers were masked (the three tool results, two of the three resources): counted when the session is sealed.
    await waitFor(async () => (await store.getSession(sessionId))?.redactions === 5, 'the sealed session to count five masked messages');
  });
});
