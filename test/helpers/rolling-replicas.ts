import assert from 'node:assert/strict';
import type { TestGateway } from './gateway.js';
import { mcpHeaders } from './raw-http.js';
import { waitFor } from './wait.js';

/** A legacy session, and the replica that holds it. */
export interface LegacySession {
  id: string;
  owner: TestGateway;
}

/**
 * Two replicas of one gateway on one PostgreSQL store, each with the everything server as `everything` (tool pins
 * off), replaced one at a time as a rolling deploy does: the successor (with a config of its own and a new instance
 * id) started and known to the other before the one it replaces is stopped. A legacy session lives in the process
 * that opened it and ends with it: `sessions` are those still open. The caller is `auth` (a dev user's Authorization).
 */
export class RollingReplicas {
  /** The two replicas serving now: each replacement takes the place of one. */
  readonly live: TestGateway[] = [];
  /** Legacy sessions opened (and pushed here by the test) whose replica has not been replaced. */
  sessions: LegacySession[] = [];

  constructor(readonly auth: Record<string, string>) {}

  /** A replica joins, waited for until the others' membership lists it. */
  async add(gw: TestGateway): Promise<void> {
    this.live.push(gw);
    await this.known(gw);
  }

  /** One step of a rolling deploy: the successor of replica `slot` started and known, then the replica stopped. */
  async replace(slot: number, start: () => Promise<TestGateway>): Promise<void> {
    const was = this.live[slot]!;
    this.live[slot] = await start();
    await this.known(this.live[slot]!);
    await was.stop();
    this.sessions = this.sessions.filter((s) => s.owner !== was);
  }

  /** Waits until every other live replica's membership lists `gw`, so that a hop to it is never answered as gone. */
  known(gw: TestGateway): Promise<void> {
    return waitFor(async () => {
      for (const other of this.live) {
        if (other === gw) continue;
        await other.gateway.cluster!.membership.refresh();
        if (other.gateway.cluster!.membership.addressOf(gw.gateway.replicas.instance) === undefined) return false;
      }
      return true;
    }, `the replicas to know ${gw.gateway.replicas.instance}`);
  }

  /** An echo call in a legacy session, sent to `gw`: its status, headers and text. */
  async echo(gw: TestGateway, sessionId: string, message: string): Promise<{ status: number; headers: Headers; text: string }> {
    const res = await fetch(gw.mcp('everything'), {
      method: 'POST',
      headers: { ...mcpHeaders, ...this.auth, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 'e', method: 'tools/call', params: { name: 'echo', arguments: { message } } }),
    });
    return { status: res.status, headers: res.headers, text: await res.text() };
  }

  /** The session answers an echo call sent to each live replica: its owner serves it, the other forwards it over the hop. */
  async worksOnBoth(session: LegacySession, what: string): Promise<void> {
    for (const gw of this.live) {
      const via = gw === session.owner ? 'its owner' : 'the other replica';
      if (gw !== session.owner) assert.equal(gw.gateway.sessions.get(session.id), undefined, `${what}: held by its owner alone`);
      const res = await this.echo(gw, session.id, `${what} via ${via}`);
      assert.equal(res.status, 200, `${what} via ${via}: ${res.text}`);
      assert.ok(res.text.includes(`Echo: ${what} via ${via}`), res.text);
    }
  }
}
