import { useEffect, useState } from 'preact/hooks';
import { Alert, Fetched } from '../components/alert';
import { get, post } from '../api';
import { LineDiff } from '../components/line-diff';
import { time } from '../format';
import type { AuditStreamSummary } from '../../../src/console/audit-summary.js';
import type { ToolPinReason } from '../../../src/store/pin-types.js';

interface Agent {
  name: string;
  connected: boolean;
  version: string | null;
  connections: string[];
  sessions: number;
  lastHeartbeat: string | null;
  bytesIn: number;
  bytesOut: number;
  tunnels: number;
  /** With replicas: the other replicas holding a tunnel of it (sessions here are relayed through them). */
  elsewhere?: string[];
}

/** Connected here; else through another replica's tunnel (relayed); else not at all. */
function agentState(a: Agent): { label: string; ok: boolean } {
  if (a.connected) return { label: 'connected', ok: true };
  if ((a.elsewhere ?? []).length > 0) return { label: `connected to replica ${a.elsewhere!.join(', ')}`, ok: true };
  return { label: 'disconnected', ok: false };
}

interface Pin {
  connection: string;
  tool: string;
  status: 'pinned' | 'quarantined' | 'removed';
  digest: string | null;
  pendingDigest: string | null;
  pendingSince: string | null;
  /** Since when its server lists the name twice: held, whatever is approved, until it lists it once. */
  duplicatedSince: string | null;
  approvedBy: string | null;
  approvedAt: string | null;
  /** Why the pinned definition was flagged (kept after an admin approved it anyway). */
  reasons: ToolPinReason[];
  /** Why the waiting definition is held, besides being new or changed. */
  pendingReasons: ToolPinReason[];
  /** Other connections that offer a tool of the same name. */
  alsoOfferedBy: string[];
  definition?: unknown;
  pendingDefinition?: unknown;
}

/** A pin's concerns in a table cell: the rules its definitions tripped, and the other connections offering its name. */
function Concerns({ pin }: { pin: Pin }) {
  const rules = (list: ToolPinReason[]) => [...new Set(list.map((r) => r.rule))].join(', ');
  const notes = [
    ...(pin.duplicatedSince !== null ? ['held: listed twice by its server'] : []),
    ...(pin.pendingReasons.length > 0 ? [`held: ${rules(pin.pendingReasons)}`] : []),
    ...(pin.reasons.length > 0 ? [`flagged: ${rules(pin.reasons)}`] : []),
    ...(pin.alsoOfferedBy.length > 0 ? [`name also on ${pin.alsoOfferedBy.join(', ')}`] : []),
  ];
  return notes.length === 0 ? (
    <>—</>
  ) : (
    <>
      {notes.map((n) => (
        <div key={n}>{n}</div>
      ))}
    </>
  );
}

/** Why a definition is suspicious, one reason a line: the rule, where, and what (quoted text already escaped). */
function Reasons({ title, reasons }: { title: string; reasons: ToolPinReason[] }) {
  if (reasons.length === 0) return null;
  return (
    <>
      <h4>{title}</h4>
      <ul class="pin-reasons">
        {reasons.map((r, k) => (
          <li key={k}>
            <strong>{r.rule}</strong> in <code>{r.field}</code>: {r.message}
            {r.connections && r.connections.length > 0 ? ` (${r.connections.join(', ')})` : ''}
          </li>
        ))}
      </ul>
    </>
  );
}

interface Connection {
  name: string;
  description: string | null;
  upstream: string;
  agent: string | null;
  groups: string[];
  guardrailsDefault: string;
  pinning: boolean;
  openSessions: number;
  /** A virtual server's members; null for a connection. */
  members: Member[] | null;
}

interface Member {
  connection: string;
  state: 'up' | 'down' | 'unknown';
  reason: string | null;
  since: string | null;
  /** The virtual sessions open now that use it; 0: its state is as last seen. */
  sessions: number;
}

/** A virtual server's members, each with its state: down ones with why and since when. */
function Members({ members }: { members: Member[] }) {
  return (
    <ul class="members">
      {members.map((m) => (
        <li key={m.connection}>
          {m.connection}{' '}
          <span class={`status ${m.state === 'up' ? 'status-open' : m.state === 'down' ? 'status-cut-off' : 'status-closed'}`}>
            {m.state === 'unknown' ? 'not opened yet' : m.state}
          </span>
          {m.state === 'down' ? (
            <span class="hint">
              {' '}
              {m.reason} (since {time(m.since)})
            </span>
          ) : null}
          {m.state !== 'unknown' && m.sessions === 0 ? <span class="hint"> as last seen: no session uses it now</span> : null}
        </li>
      ))}
    </ul>
  );
}

/** Agents, connections and tool pins at a glance; a quarantined definition's change, and approving it. */
export function AdminPage() {
  const [agents, setAgents] = useState<Agent[] | string | undefined>(undefined);
  const [pins, setPins] = useState<Pin[] | string | undefined>(undefined);
  const [connections, setConnections] = useState<Connection[] | string | undefined>(undefined);
  const [audit, setAudit] = useState<AuditStreamSummary[]>([]);
  const [open, setOpen] = useState<Pin | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);

  const load = () => {
    get<{ agents: Agent[] }>('/api/agents').then(
      (r) => setAgents(r.agents),
      (err: Error) => setAgents(err.message),
    );
    get<{ pins: Pin[] }>('/api/pins').then(
      (r) => setPins(r.pins),
      (err: Error) => setPins(err.message),
    );
    get<{ connections: Connection[]; audit?: AuditStreamSummary[] }>('/api/console/connections').then(
      (r) => {
        setConnections(r.connections);
        setAudit(r.audit ?? []);
      },
      (err: Error) => setConnections(err.message),
    );
  };
  useEffect(load, []);

  const show = async (p: Pin) => {
    setError(undefined);
    try {
      setOpen((await get<{ pin: Pin }>(`/api/pins/${encodeURIComponent(p.connection)}/${encodeURIComponent(p.tool)}`)).pin);
    } catch (err) {
      setError((err as Error).message);
    }
  };
  const approve = async (p: Pin) => {
    setError(undefined);
    try {
      await post(`/api/pins/${encodeURIComponent(p.connection)}/${encodeURIComponent(p.tool)}/approve`, { digest: p.pendingDigest });
      setOpen(undefined);
      load();
    } catch (err) {
      setError((err as Error).message);
    }
  };

  return (
    <>
      <h1>Agents, connections and tool pins</h1>
      {audit.flatMap((a) =>
        a.warning === null
          ? []
          : [
              <p key={a.name} role="alert" class="error">
                {a.warning}
              </p>,
            ],
      )}
      <section aria-labelledby="agents-heading">
        <h2 id="agents-heading">Agents</h2>
        <Fetched value={agents} empty="No connection is served by an agent.">
          {(rows) => (
            <table>
              <thead>
                <tr>
                  <th scope="col">Agent</th>
                  <th scope="col">State</th>
                  <th scope="col">Version</th>
                  <th scope="col">Connections</th>
                  <th scope="col">Sessions</th>
                  <th scope="col">Last heartbeat</th>
                  <th scope="col">Traffic in / out</th>
                </tr>
              </thead>
              <tbody>
                {rows.map((a) => (
                  <tr key={a.name}>
                    <td>{a.name}</td>
                    <td>
                      <span class={`status ${agentState(a).ok ? 'status-open' : 'status-cut-off'}`}>{agentState(a).label}</span>
                    </td>
                    <td>{a.version ?? '—'}</td>
                    <td>{a.connections.join(', ') || '—'}</td>
                    <td>{a.sessions}</td>
                    <td>{time(a.lastHeartbeat)}</td>
                    <td>
                      {(a.bytesIn / 1024).toFixed(0)} KiB / {(a.bytesOut / 1024).toFixed(0)} KiB
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </Fetched>
      </section>
      <section aria-labelledby="connections-heading">
        <h2 id="connections-heading">Connections</h2>
        <Fetched value={connections} empty="No connections.">
          {(rows) => (
            <table>
              <thead>
                <tr>
                  <th scope="col">Connection</th>
                  <th scope="col">Upstream</th>
                  <th scope="col">Who may open it</th>
                  <th scope="col">Default for unmatched calls</th>
                  <th scope="col">Tool pinning</th>
                  <th scope="col">Open sessions</th>
                </tr>
              </thead>
              <tbody>
                {rows.map((c) => (
                  <tr key={c.name}>
                    <td>
                      {c.name}
                      {c.description ? <div class="hint">{c.description}</div> : null}
                    </td>
                    <td>
                      {c.members
                        ? `virtual server of ${c.members.length} member${c.members.length === 1 ? '' : 's'}`
                        : c.agent
                          ? `via agent ${c.agent}`
                          : c.upstream}
                      {c.members ? <Members members={c.members} /> : null}
                    </td>
                    <td>{c.groups.join(', ') || 'nobody'}</td>
                    {/* A virtual server's policy is its members': each call passes its member's own. */}
                    <td>{c.members ? 'each member’s own' : c.guardrailsDefault}</td>
                    <td>{c.members ? 'each member’s own' : c.pinning ? 'on' : 'off'}</td>
                    <td>{c.openSessions}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </Fetched>
      </section>
      {audit.length > 0 ? (
        <section aria-labelledby="audit-heading">
          <h2 id="audit-heading">Audit streams</h2>
          <table>
            <thead>
              <tr>
                <th scope="col">Sink</th>
                <th scope="col">Kind</th>
                <th scope="col">State</th>
                <th scope="col">Events waiting</th>
                <th scope="col">Last shipped</th>
                <th scope="col">Failed attempts</th>
              </tr>
            </thead>
            <tbody>
              {audit.map((a) => (
                <tr key={a.name}>
                  <td>{a.name}</td>
                  <td>{a.kind}</td>
                  <td>
                    <span class={`status ${a.warning === null ? 'status-open' : 'status-cut-off'}`}>{a.warning === null ? 'keeping up' : 'behind'}</span>
                  </td>
                  <td>{a.backlog}</td>
                  <td>{time(a.lastShippedAt)}</td>
                  <td>{a.failures}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      ) : null}
      <section aria-labelledby="pins-heading">
        <h2 id="pins-heading">Tool pins</h2>
        <Alert message={error} />
        <Fetched value={pins} empty="No tool definitions pinned yet: they are pinned when a server first lists them.">
          {(rows) => (
            <table>
              <thead>
                <tr>
                  <th scope="col">Connection</th>
                  <th scope="col">Tool</th>
                  <th scope="col">Status</th>
                  <th scope="col">Approved</th>
                  <th scope="col">Concerns</th>
                  <th scope="col">
                    <span class="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {[...rows]
                  .sort((a, b) => Number(b.status === 'quarantined') - Number(a.status === 'quarantined'))
                  .map((p) => (
                    <tr key={`${p.connection}/${p.tool}`}>
                      <td>{p.connection}</td>
                      <td>
                        <code>{p.tool}</code>
                      </td>
                      <td>
                        <span class={`status status-${p.status === 'quarantined' ? 'cut-off' : p.status === 'pinned' ? 'closed' : 'open'}`}>{p.status}</span>
                        {p.pendingSince ? ` since ${time(p.pendingSince)}` : ''}
                      </td>
                      <td>{p.approvedBy ? `${p.approvedBy}, ${time(p.approvedAt)}` : '—'}</td>
                      <td>
                        <Concerns pin={p} />
                      </td>
                      <td>
                        <button type="button" onClick={() => void show(p)}>
                          {p.pendingDigest !== null ? 'Review the change' : 'Definition'}
                        </button>
                      </td>
                    </tr>
                  ))}
              </tbody>
            </table>
          )}
        </Fetched>
        {open !== undefined && (
          <div class="card pin-detail" role="region" aria-label={`Definition of ${open.tool}`}>
            <h3>
              <code>{open.tool}</code> on {open.connection}
            </h3>
            {open.alsoOfferedBy.length > 0 && (
              <p>A tool of the same name is also offered by {open.alsoOfferedBy.join(', ')}: a client using both could be steered to the wrong one.</p>
            )}
            {open.duplicatedSince !== null && (
              <p>
                Its server lists this name twice (since {time(open.duplicatedSince)}): which definition a client would use is unknown, so the tool is hidden and
                its calls are refused until the server lists it once. No approval can release it before.
              </p>
            )}
            <Reasons title="Why the waiting definition is held" reasons={open.pendingReasons} />
            <Reasons title="Why the pinned definition was flagged" reasons={open.reasons} />
            {open.pendingDigest !== null ? (
              <>
                <p>
                  {open.digest === null ? 'No definition of this tool was ever approved.' : 'The server now offers a changed definition.'} Until it is approved,
                  the tool is hidden and its calls are refused.
                </p>
                <LineDiff before={open.definition} after={open.pendingDefinition} />
                {open.duplicatedSince === null && (
                  <button type="button" class="primary" onClick={() => void approve(open)}>
                    Approve this definition
                  </button>
                )}
              </>
            ) : (
              <LineDiff before={open.definition} after={open.definition} />
            )}
            <button type="button" onClick={() => setOpen(undefined)}>
              Close
            </button>
          </div>
        )}
      </section>
    </>
  );
}
