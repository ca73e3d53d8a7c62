import type { Hono } from 'hono';
import { type ControlContext, type ControlEnv, replyJsonApi as json, requestUrl, strictParams, apiRouter } from '../http/kit/route.js';
import type { Identity } from '../core/identity.js';
import { offeredBy } from '../pins/screen.js';
import { held, type ToolPins } from '../pins/tool-pins.js';
import type { ToolPinReason, ToolPinRow } from '../store/pin-types.js';
import { optionalString, readJson } from './json-body.js';
import { HttpError } from '../core/http-error.js';
import { untrustedPath } from '../core/untrusted-text.js';

/**
 * /api/pins: the pinned tool definitions of the connections the caller may open; admins approve changed ones.
 * A pin carries why it is suspicious (`reasons` of the approved definition, `pendingReasons` of the one waiting)
 * and the other connections that offer a tool of the same name (`alsoOfferedBy`); other connections are named
 * only to those who may see them. A tool whose server lists its name twice is quarantined, since `duplicatedSince`.
 *   GET  /api/pins                          ?connection → { pins }
 *   GET  /api/pins/:connection/:tool        → { pin }   (with both definitions)
 *   POST /api/pins/:connection/:tool/approve { digest? } → { pin }
 */

function parse(definition: string | null): unknown {
  return definition === null ? null : (JSON.parse(definition) as unknown);
}

/** Who is looking at a pin: what else offers its name, and which connections they may see named. */
interface Viewer {
  offeredBy: ReadonlyMap<string, readonly string[]>;
  sees: (connection: string) => boolean;
}

export function pinView(p: ToolPinRow, withDefinitions: boolean, viewer: Viewer): Record<string, unknown> {
  const reasons = (list: readonly ToolPinReason[]) =>
    list.map((r) => (r.connections === undefined ? r : { ...r, connections: r.connections.filter(viewer.sees) }));
  const iso = (us: number | null) => (us === null ? null : new Date(us / 1000).toISOString());
  return {
    connection: p.connection,
    tool: p.tool,
    status: held(p) ? 'quarantined' : p.removedAtUs !== null ? 'removed' : 'pinned',
    digest: p.digest,
    pendingDigest: p.pendingDigest,
    pendingSince: iso(p.pendingSinceUs),
    removedAt: iso(p.removedAtUs),
    duplicatedSince: iso(p.duplicatedSinceUs),
    pinnedAt: iso(p.pinnedAtUs),
    approvedAt: iso(p.approvedAtUs),
    approvedBy: p.approvedBy,
    reasons: reasons(p.reasons),
    pendingReasons: reasons(p.pendingReasons),
    alsoOfferedBy: p.removedAtUs === null ? (viewer.offeredBy.get(p.tool) ?? []).filter((c) => c !== p.connection && viewer.sees(c)) : [],
    ...(withDefinitions ? { definition: parse(p.definition), pendingDefinition: parse(p.pendingDefinition) } : {}),
  };
}

export class PinsApi {
  constructor(
    private readonly pins: ToolPins,
    private readonly mayOpen: (identity: Identity, connection: string) => boolean,
  ) {}

  /** Admins see every connection's pins; others those of the connections they may open. */
  #visible(identity: Identity, connection: string): boolean {
    return this.pins.mayApprove(identity) || this.mayOpen(identity, connection);
  }

  /** The viewer of pins, given every pin: what offers each tool name (nothing when pins.duplicateNames is allow). */
  #viewer(identity: Identity, all: readonly ToolPinRow[]): Viewer {
    return { offeredBy: offeredBy(this.pins.duplicateNames === 'allow' ? [] : all), sees: (c) => this.#visible(identity, c) };
  }

  /** The routes under /api/pins, for a caller the person authentication has named (`identity`). */
  routes(): Hono<ControlEnv> {
    const r = apiRouter();
    r.all('/', async (c) => {
      if (c.req.method !== 'GET') throw new HttpError(405, 'use GET');
      const identity = c.get('identity');
      const connection = requestUrl(c).searchParams.get('connection') ?? undefined;
      const all = await this.pins.list();
      const rows = all.filter((p) => (connection === undefined || p.connection === connection) && this.#visible(identity, p.connection));
      const viewer = this.#viewer(identity, all);
      return json(c, 200, { pins: rows.map((p) => pinView(p, false, viewer)) });
    });
    // A connection the caller may not see has no pins to them: as if there were no such path.
    const visible = (c: ControlContext): { connection: string; tool: string } => {
      const { connection, tool } = strictParams(c) as { connection: string; tool: string };
      if (!this.#visible(c.get('identity'), connection)) throw new HttpError(404, `no API at ${untrustedPath(requestUrl(c).pathname)}`);
      return { connection, tool };
    };
    r.all('/:connection/:tool', async (c) => {
      const { connection, tool } = visible(c);
      if (c.req.method !== 'GET') throw new HttpError(405, 'use GET');
      const pin = await this.pins.get(connection, tool);
      return json(c, 200, { pin: pinView(pin, true, this.#viewer(c.get('identity'), await this.pins.list())) });
    });
    r.all('/:connection/:tool/approve', async (c) => {
      const { connection, tool } = visible(c);
      if (c.req.method !== 'POST') throw new HttpError(405, 'use POST');
      const identity = c.get('identity');
      const digest = optionalString(await readJson(c.env.incoming), 'digest');
      const pin = await this.pins.approve(connection, tool, identity, digest);
      return json(c, 200, { pin: pinView(pin, true, this.#viewer(identity, await this.pins.list())) });
    });
    r.all('*', (c) => {
      throw new HttpError(404, `no API at ${untrustedPath(requestUrl(c).pathname)}`);
    });
    return r;
  }
}
