import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { secretHash } from '../../src/crypto/secrets.js';
import { AgentProcess } from './agent-process.js';
import { fixturePath } from './everything.js';
import type { TestGateway } from './gateway.js';

/** The most the kernel may buffer in one TCP socket's receive or send direction (its autotuning maximum). */
function tcpBufferMax(kind: 'rmem' | 'wmem'): number {
  try {
    return Number(readFileSync(`/proc/sys/net/ipv4/tcp_${kind}`, 'utf8').trim().split(/\s+/)[2]) || 8 << 20;
  } catch {
    return 8 << 20;
  }
}

/**
 * Far more than a paused server can have written into pipes, sockets (two loopback connections, each direction
 * at the kernel's maximum) and one backlog; an unpaused flood passes it in seconds.
 */
export const pausedBound = Math.max(32 << 20, 2 * (tcpBufferMax('rmem') + tcpBufferMax('wmem')) + (8 << 20));

/** The same with one more loopback connection and its relay's 1 MiB high-water mark: an agent's tunnel relayed by another replica. */
export const relayedPausedBound = pausedBound + tcpBufferMax('rmem') + tcpBufferMax('wmem') + (2 << 20);

/** A call of the flood server's `flood` tool (test/fixtures/flood-server.ts), id 7, its progress on token "p". */
export const floodCall = JSON.stringify({
  jsonrpc: '2.0',
  id: 7,
  method: 'tools/call',
  params: { name: 'flood', arguments: {}, _meta: { progressToken: 'p' } },
});

export function sessionHeaders(gw: TestGateway, session: string): Record<string, string> {
  return { ...gw.auth, 'mcp-session-id': session, 'mcp-protocol-version': '2025-11-25' };
}

/** What a stdio flood server last said it had written (it says so on stderr every 200 ms; the gateway logs it). */
export function stdioFlooded(gw: TestGateway): number {
  for (let i = gw.log.lines.length - 1; i >= 0; i--) {
    const m = /^flooded (\d+)$/.exec(String(gw.log.lines[i]!.stderr ?? ''));
    if (m) return Number(m[1]);
  }
  return 0;
}

/**
 * Waits until the server has stopped writing (no growth over a second and a half); fails as soon as it has written
 * more than `pausedBound`, the sign that the gateway is reading on for a client that is not.
 */
export async function waitUntilPaused(flooded: () => Promise<number> | number, bound = pausedBound): Promise<number> {
  let last = -1;
  let since = Date.now();
  const deadline = Date.now() + 60_000;
  for (;;) {
    const now = await flooded();
    assert.ok(now <= bound, `the server wrote ${now} bytes for a client that reads nothing: the gateway did not pause it`);
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (now > 0 && Date.now() - since > 1500) {
      return now;
    }
    assert.ok(Date.now() < deadline, 'the flood neither stopped nor grew past the bound');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * The flood agent (its server writes without end: fixtures/flood-server.js) made known to the store of `gw` and
 * started with its tunnel to `gatewayUrl`, its config in `dir`. Heartbeats are slow: on a loaded machine a flooding
 * agent misses 1 s pings, and its tunnel would end for that.
 */
export async function startFloodAgent(gw: TestGateway, gatewayUrl: string, dir: string, token: string): Promise<AgentProcess> {
  await gw.gateway.recorder!.store.putAgent(
    { name: 'flood-agent', tokenHash: secretHash(token), createdAtUs: Date.now() * 1000, revokedAtUs: null, lastSeenAtUs: null },
    false,
  );
  const config = join(dir, 'agent.yaml');
  writeFileSync(
    config,
    stringify({
      gateway: gatewayUrl,
      name: 'flood-agent',
      token: '${env:AGENT_TOKEN}',
      heartbeat: '10s',
      log: { level: 'warn' },
      connections: { flood: { stdio: { command: process.execPath, args: [fixturePath('flood-server.js'), 'stdio'] } } },
    }),
  );
  const agent = new AgentProcess(config, { AGENT_TOKEN: token });
  await agent.connected();
  return agent;
}
