import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CreateTaskResultSchema, GetTaskPayloadResultSchema, GetTaskResultSchema } from '@modelcontextprotocol/sdk/types.js';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

/** Tasks (protocol 2025-11-25): call now, poll, fetch the result later — all relayed untouched. */
describe('tasks through the gateway', () => {
  let gw: TestGateway;
  let client: Client;
  let transport: StreamableHTTPClientTransport;

  before(async () => {
    gw = await startTestGateway({ connections: { everything: { stdio: everythingStdio() } } });
    transport = new StreamableHTTPClientTransport(gw.mcp('everything'), { requestInit: { headers: gw.auth } });
    client = new Client({ name: 'tasks-test', version: '1.0.0' }, { capabilities: { elicitation: { form: {} } } });
    await client.connect(transport);
  });

  after(async () => {
    await transport.terminateSession().catch(() => {});
    await client.close();
    await gw.stop();
  });

  it('creates a task with tools/call, polls tasks/get to completion and reads tasks/result', async () => {
    const created = await client.request(
      { method: 'tools/call', params: { name: 'simulate-research-query', arguments: { topic: 'MCP gateways' }, task: { ttl: 60_000 } } },
      CreateTaskResultSchema,
    );
    const taskId = created.task.taskId;
    assert.ok(taskId);
    const seen = new Set<string>();
    const deadline = Date.now() + 20_000;
    let status = created.task.status;
    while (status !== 'completed' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 300));
      const task = await client.request({ method: 'tasks/get', params: { taskId } }, GetTaskResultSchema);
      status = task.status;
      seen.add(status);
    }
    assert.equal(status, 'completed');
    assert.ok(seen.has('working') || seen.has('completed'));
    const result = await client.request({ method: 'tasks/result', params: { taskId } }, GetTaskPayloadResultSchema);
    assert.match(JSON.stringify(result), /MCP gateways/);
  });
});
