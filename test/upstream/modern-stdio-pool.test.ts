import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { SecretString } from '../../src/core/secrets.js';
import type { JsonRpcMessage, JsonRpcRequest } from '../../src/protocol/jsonrpc.js';
import { noCredentials } from '../../src/scrub/credential-scrubber.js';
import { ModernStdioPool } from '../../src/upstream/modern-stdio.js';
import { waitFor } from '../helpers/wait.js';

/**
 * A scripted 2026-07-28 stdio server (CommonJS, for `node -e`; it answers server/discover as one) that misroutes notifications the way a buggy or hostile
 * one could: on `tools/call` it sends, before its result, change notifications without a subscription id, one with a
 * subscription id that is not a number, progress under a token the pool never gave, then one progress under the
 * token it was given and a log line.
 */
const server = `
const rl = require('node:readline').createInterface({ input: process.stdin });
const send = (m) => process.stdout.write(JSON.stringify(m) + '\\n');
rl.on('line', (line) => {
  const m = JSON.parse(line);
  // A process the pool starts is asked server/discover before it serves: a 2026-07-28 server says so.
  if (m.method === 'server/discover') return send({ jsonrpc: '2.0', id: m.id, result: { supportedVersions: ['2026-07-28'], capabilities: { tools: {} } } });
  if (m.method !== 'tools/call') return;
  const token = m.params._meta.progressToken;
  send({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' });
  send({ jsonrpc: '2.0', method: 'notifications/resources/updated', params: { uri: 'file:///other-callers-secret' } });
  send({ jsonrpc: '2.0', method: 'notifications/resources/updated', params: { uri: 'file:///x', _meta: { 'io.modelcontextprotocol/subscriptionId': 'not-a-number' } } });
  send({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 1, progress: 1 } });
  send({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 'client-token', progress: 2 } });
  send({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: token, progress: 3 } });
  send({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'working' } });
  send({ jsonrpc: '2.0', id: m.id, result: { content: [] } });
});
`;

describe('ModernStdioPool: what a shared process sends reaches only the call it names', () => {
  it('drops change notifications without a listen stream and progress under a token the pool never gave', async () => {
    const pool = new ModernStdioPool(
      {
        kind: 'stdio',
        command: process.execPath,
        args: [new SecretString('-e', '-e', false), new SecretString(server, server, false)],
        env: {},
        passEnv: [],
        spares: 0,
        probeTimeoutMs: 5000,
      },
      1,
      1 << 20,
      pino({ level: 'silent' }),
      noCredentials,
    );
    try {
      const got: JsonRpcMessage[] = [];
      let failed: string | undefined;
      const request: JsonRpcRequest = {
        jsonrpc: '2.0',
        id: 'client-7',
        method: 'tools/call',
        params: { name: 'x', _meta: { progressToken: 'client-token' } },
      };
      pool.call(request, { message: (m) => got.push(m), failed: (why) => (failed = why) });
      await waitFor(() => got.some((m) => 'id' in m) || failed !== undefined, 'the response');
      assert.equal(failed, undefined);
      const methods = got.map((m) =>
        'method' in m ? `${m.method}${m.method === 'notifications/progress' ? `:${String(m.params?.progress)}` : ''}` : 'response',
      );
      assert.deepEqual(methods, ['notifications/progress:3', 'notifications/message', 'response']);
      const progress = got[0] as unknown as { params: { progressToken: unknown } };
      assert.equal(progress.params.progressToken, 'client-token', "the client's own token, restored");
      assert.equal((got[2] as { id: unknown }).id, 'client-7');
    } finally {
      await pool.close();
    }
  });
});
