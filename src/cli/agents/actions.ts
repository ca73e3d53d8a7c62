import { randomBytes } from 'node:crypto';
import { clusterSecretValues } from '../../cluster/config.js';
import { secretHash } from '../../crypto/secrets.js';
import type { AgentStatus } from '../../agent/hub.js';
import { isoUs } from '../../recording/transcript.js';
import { nowUs } from '../../recording/time.js';
import { openStore } from '../../store/open.js';
import type { Store } from '../../store/store.js';
import { StoreSchemaError, StoreUnavailableError } from '../../store/store.js';
import { KeyFileError } from '../../crypto/key-file.js';
import { readLocalApiKey } from '../../crypto/local-api-key.js';
import { callGateway } from '../gateway-api.js';
import { gatewayBaseUrl } from '../gateway-url.js';
import { configForCommand } from '../load-config.js';
import { printList } from '../print-list.js';

/** What `portcullis agents …` does (the flags are in index.ts). */

const agentName = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/**
 * The gateway's local API key in the config's data directory, when this user can read it and the gateway asked is the
 * config's own (never sent to a --gateway or $PORTCULLIS_URL elsewhere); else the user's sign-in is used.
 */
function localKey(o: { config?: string; gateway?: string }): string | undefined {
  if (o.gateway !== undefined || process.env.PORTCULLIS_URL !== undefined) return undefined;
  try {
    return readLocalApiKey(configForCommand(o.config).dataDir);
  } catch (err) {
    if (err instanceof KeyFileError) return undefined;
    throw err;
  }
}

async function withStore<T>(configFile: string | undefined, run: (store: Store) => Promise<T>): Promise<T> {
  const config = configForCommand(configFile);
  let store: Store;
  try {
    store = await openStore(config.store.reveal());
    await store.migrate();
  } catch (err) {
    if (err instanceof StoreSchemaError || err instanceof StoreUnavailableError) {
      process.stderr.write(`portcullis agents: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  try {
    return await run(store);
  } finally {
    await store.close();
  }
}

/**
 * Tells the gateways sharing a PostgreSQL store that an agent's token changed, so the one holding its tunnel ends it
 * now rather than at its next heartbeat (which it does anyway, should this notification be lost).
 */
async function announceAgent(configFile: string | undefined, name: string): Promise<void> {
  const config = configForCommand(configFile);
  // Loaded only here: it brings pg, which `agents create` and `agents list` never use.
  const { announceChange } = await import('../../cluster/change-bus.js');
  await announceChange(config.store.reveal(), 'agent', name, `cli-${process.pid}`, clusterSecretValues(config.cluster)).catch((err: Error) => {
    process.stderr.write(`portcullis agents: the gateways could not be told at once (${err.message}); tunnels end at their next heartbeat\n`);
  });
}

function checkName(name: string): void {
  if (!agentName.test(name)) {
    process.stderr.write(`portcullis agents: an agent name is 1-64 lower-case letters, digits, - and _, found ${JSON.stringify(name.slice(0, 80))}\n`);
    process.exit(2);
  }
}

export async function agentsCreateAction(name: string, o: { config?: string; rotate?: boolean }): Promise<void> {
  checkName(name);
  const token = `pca_${randomBytes(32).toString('base64url')}`;
  const created = await withStore(o.config, (store) =>
    store.putAgent({ name, tokenHash: secretHash(token), createdAtUs: nowUs(), revokedAtUs: null, lastSeenAtUs: null }, o.rotate === true),
  );
  if (!created) {
    process.stderr.write(`portcullis agents: agent '${name}' exists; --rotate gives it a new token\n`);
    process.exit(1);
  }
  if (o.rotate === true) await announceAgent(o.config, name);
  process.stderr.write(
    `agent '${name}' ${o.rotate ? 'has a new token' : 'created'}. Its token (shown once, keep it secret; the agent reads it as \${env:PORTCULLIS_AGENT_TOKEN} or \${file:…}):\n`,
  );
  process.stdout.write(`${token}\n`);
}

export async function agentsListAction(o: { config?: string; gateway?: string; json?: boolean }): Promise<void> {
  const rows = await withStore(o.config, (store) => store.listAgents());
  let live: Map<string, AgentStatus> | undefined;
  try {
    const { agents } = (await callGateway('agents', await gatewayBaseUrl('agents', o.gateway, o.config), 'GET', '/api/agents', undefined, localKey(o))) as {
      agents: AgentStatus[];
    };
    live = new Map(agents.map((a) => [a.name, a]));
  } catch {
    live = undefined;
  }
  const names = [...new Set([...rows.map((r) => r.name), ...(live?.keys() ?? [])])].sort();
  const view = names.map((name) => {
    const r = rows.find((x) => x.name === name);
    const s = live?.get(name);
    const via = s?.elsewhere ?? [];
    const state = r?.revokedAtUs
      ? 'revoked'
      : live === undefined
        ? 'unknown (gateway not reachable)'
        : s?.connected
          ? 'connected'
          : via.length > 0
            ? `connected to replica ${via.join(', ')}`
            : 'disconnected';
    return {
      name,
      state,
      version: s?.version ?? null,
      connections: s?.connections ?? [],
      sessions: s?.sessions ?? 0,
      lastHeartbeat: s?.lastHeartbeat ?? null,
      created: r ? isoUs(r.createdAtUs) : null,
      lastSeen: r?.lastSeenAtUs ? isoUs(r.lastSeenAtUs) : null,
      known: r !== undefined,
    };
  });
  printList(view, {
    json: o.json,
    none: 'no agents; create one with: portcullis agents create <name>',
    header: ['AGENT', 'STATE', 'VERSION', 'CONNECTIONS', 'SESSIONS', 'LAST HEARTBEAT', 'CREATED'],
    row: (v) => [
      v.name,
      v.known ? v.state : `${v.state} (no token: portcullis agents create ${v.name})`,
      v.version ?? '-',
      v.connections.join(',') || '-',
      String(v.sessions),
      v.lastHeartbeat ?? '-',
      v.created ?? '-',
    ],
  });
}

export async function agentsRevokeAction(name: string, o: { config?: string }): Promise<void> {
  checkName(name);
  const done = await withStore(o.config, (store) => store.updateAgent(name, { revokedAtUs: nowUs() }));
  if (!done) {
    process.stderr.write(`portcullis agents: there is no agent '${name}'\n`);
    process.exit(1);
  }
  await announceAgent(o.config, name);
  process.stdout.write(`agent '${name}' revoked\n`);
}
