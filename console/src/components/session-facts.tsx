import type { ErasureFacts } from '../../../src/recording/erasure-facts.js';
import { person, time } from '../format';
import type { Unreadable } from '../unreadable';
import { ErasureEntry } from './erasure';
import { Link } from './link';
import { UnreadableEntry } from './unreadable';
import { Badge, type Verification } from './verification';

/** GET /api/sessions/<id>: a recorded session as its recording states it. */
export interface Session {
  id: string;
  connection: string;
  subject: string;
  email: string | null;
  groups: string[];
  status: string;
  closeReason: string | null;
  openedAtUs: number;
  closedAtUs: number | null;
  protocolVersion: string | null;
  /** modern: MCP 2026-07-28 exchanges (each names its version); legacy: a 2025-era session. */
  era: 'modern' | 'legacy';
  /** As the peers stated them in initialize: any JSON. */
  clientInfo: unknown;
  serverInfo: unknown;
  /** Columns of the session row that disagree with the recording (the fields above are the recording's). */
  tampered: Array<{ message: string }>;
  /** Erased (crypto-shredded): its data key destroyed, by whom, when and why; its payloads can never be read. */
  erased?: ErasureFacts | null;
  /** Why its recording cannot be read here (its opening), which kind, and what to do (recording/attest.ts). */
  unreadable?: string;
  unreadableKind?: 'no-kek' | 'erased' | 'altered';
  unreadableFix?: string;
}

/** A group of a modern session's exchanges (GET /api/sessions/<id>/events?groups): the session a user sees of its client. */
export interface SessionGroupLink {
  id: string;
  label: string;
  traceId?: string;
  exchanges: number;
}

/** A peer's name and version as its initialize stated them: text whatever they sent (a client chooses its clientInfo). */
function info(v: unknown): string {
  const o = typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {};
  const text = (x: unknown) => (x === undefined || x === null ? '' : typeof x === 'string' ? x : JSON.stringify(x));
  return `${text(o.name) || '?'} ${text(o.version)}`.trim();
}

/**
 * The top of a session's page: the way back, its id, and its facts: whose, where, its state (`following` while the
 * page follows it live), its era and groups, its peers, its erasure or why it cannot be read, and its integrity.
 */
export function SessionFacts({
  session,
  following,
  groups,
  unreadable,
  verification,
}: {
  session: Session;
  following: boolean;
  groups: SessionGroupLink[] | undefined;
  unreadable: Unreadable | undefined;
  verification: Verification | string | undefined;
}) {
  return (
    <>
      <p>
        <Link href="/">← Sessions</Link>
      </p>
      <h1>
        Session <code>{session.id}</code>
      </h1>
      <dl class="meta">
        <dt>User</dt>
        <dd>
          {person(session)} <span class="hint">({session.groups.join(', ') || 'no groups'})</span>
        </dd>
        <dt>Connection</dt>
        <dd>{session.connection}</dd>
        <dt>Opened</dt>
        <dd>{time(session.openedAtUs)}</dd>
        <dt>Status</dt>
        <dd>
          <span class={`status status-${session.status}`}>{session.status}</span>
          {session.closeReason ? ` — ${session.closeReason}` : ''}
          {following && <span class="hint"> · following live</span>}
        </dd>
        <dt>Era</dt>
        <dd>
          {session.era === 'modern'
            ? 'modern: MCP 2026-07-28 exchanges of one principal on one connection, each naming its protocol version'
            : `legacy: a 2025-era session, every exchange in MCP ${session.protocolVersion ?? '?'}`}
        </dd>
        {groups !== undefined && groups.length > 0 && <GroupsEntry groups={groups} />}
        <dt>Client / server</dt>
        <dd>
          {info(session.clientInfo)} → {info(session.serverInfo)} (MCP {session.protocolVersion ?? '?'})
        </dd>
        {session.erased && <ErasureEntry facts={session.erased} />}
        {unreadable !== undefined && <UnreadableEntry u={unreadable} />}
        <dt>Integrity</dt>
        <dd>
          <Badge v={verification} />
          {/* An erased session's opening event cannot be read, so the row is not checked against it: not a tampering. */}
          {!session.erased && session.tampered.map((m) => <div class="flag deny">{m.message}</div>)}
        </dd>
      </dl>
    </>
  );
}

/** A modern session's Groups entry: a link to each group of its exchanges, which may go on in other pooled sessions. */
function GroupsEntry({ groups }: { groups: SessionGroupLink[] }) {
  return (
    <>
      <dt>Groups</dt>
      <dd>
        <ul class="plain">
          {groups.map((g) => (
            <li key={g.id}>
              <Link href={`/sessions/${encodeURIComponent(g.id)}`}>{g.traceId !== undefined ? `trace ${g.traceId}` : `group ${g.label}`}</Link>{' '}
              <span class="hint">
                {g.exchanges} exchange{g.exchanges === 1 ? '' : 's'} here; the group may go on in other pooled sessions
              </span>
            </li>
          ))}
        </ul>
      </dd>
    </>
  );
}
