import { callGateway } from '../gateway-api.js';
import type { GatewayCommandOptions } from '../gateway-command.js';
import { gatewayBaseUrl } from '../gateway-url.js';
import { printList } from '../print-list.js';
import { printable } from '../table.js';
import { lineDiff } from './line-diff.js';

/** What `portcullis pins …` does, over the gateway's API as the signed-in user (the flags are in index.ts). */

interface Reason {
  rule: string;
  field: string;
  message: string;
  connections?: string[];
}

interface Pin {
  connection: string;
  tool: string;
  status: string;
  digest: string | null;
  pendingDigest: string | null;
  pendingSince: string | null;
  /** Since when its server lists the name twice (held until it lists it once); null while it lists it once. */
  duplicatedSince: string | null;
  pinnedAt: string;
  approvedAt: string | null;
  approvedBy: string | null;
  reasons: Reason[];
  pendingReasons: Reason[];
  alsoOfferedBy: string[];
  definition?: unknown;
  pendingDefinition?: unknown;
}

const short = (digest: string | null) => (digest === null ? '-' : digest.slice(0, 12));
const pinPath = (connection: string, tool: string) => `/api/pins/${encodeURIComponent(connection)}/${encodeURIComponent(tool)}`;

/** A pin's notes in one cell: held as listed twice, the rules its definitions tripped, other connections offering its name. */
function notes(p: Pin): string {
  const rules = (list: Reason[]) => [...new Set(list.map((r) => r.rule))].join(', ');
  return (
    [
      ...(p.duplicatedSince !== null ? ['held: listed twice by its server'] : []),
      ...(p.pendingReasons.length > 0 ? [`held: ${rules(p.pendingReasons)}`] : []),
      ...(p.reasons.length > 0 ? [`flagged: ${rules(p.reasons)}`] : []),
      ...(p.alsoOfferedBy.length > 0 ? [`also on: ${p.alsoOfferedBy.join(', ')}`] : []),
    ].join('; ') || '-'
  );
}

/** Why a name its server lists twice is held, and what releases it. */
const listedTwice = (p: Pin) =>
  `held: its server lists '${p.tool}' twice (since ${p.duplicatedSince}), so which definition a client would use is unknown; released when the server lists it once (an approval cannot release it)`;

/** Reasons, one a line: rule, where, what. */
const reasonLines = (list: Reason[]) =>
  list.map((r) => `  ${r.rule}  ${r.field}: ${r.message}${r.connections?.length ? ` (${r.connections.join(', ')})` : ''}`);

export async function pinsListAction(opts: GatewayCommandOptions & { connection?: string; json?: boolean }): Promise<void> {
  const base = await gatewayBaseUrl('pins', opts.gateway, opts.config);
  const { pins } = (await callGateway('pins', base, 'GET', `/api/pins${opts.connection ? `?connection=${encodeURIComponent(opts.connection)}` : ''}`)) as {
    pins: Pin[];
  };
  printList(pins, {
    json: opts.json,
    none: 'no pinned tools yet (a connection is pinned the first time its tools are listed)',
    header: ['CONNECTION', 'TOOL', 'STATUS', 'PINNED', 'WAITING', 'APPROVED BY', 'NOTES'],
    row: (p) => [p.connection, p.tool, p.status, short(p.digest), short(p.pendingDigest), p.approvedBy ?? (p.approvedAt ? '(first seen)' : '-'), notes(p)],
  });
}

export async function pinsDiffAction(connection: string, tool: string, opts: GatewayCommandOptions): Promise<void> {
  const base = await gatewayBaseUrl('pins', opts.gateway, opts.config);
  const { pin } = (await callGateway('pins', base, 'GET', pinPath(connection, tool))) as { pin: Pin };
  if (pin.pendingDigest === null) {
    const why = pin.duplicatedSince !== null ? `\n${listedTwice(pin)}` : '';
    process.stdout.write(
      `${printable(`tool '${tool}' on '${connection}' is ${pin.status} (${short(pin.digest)}); no new definition waits for approval${why}`)}\n`,
    );
    return;
  }
  const before = pin.definition === null ? '' : JSON.stringify(pin.definition, null, 2);
  const lines = [
    ...(pin.duplicatedSince !== null ? [listedTwice(pin), ''] : []),
    ...(pin.pendingReasons.length > 0 ? ['why the offered definition is suspicious:', ...reasonLines(pin.pendingReasons), ''] : []),
    `--- pinned   ${pin.digest ?? '(none: never approved)'}`,
    `+++ offered  ${pin.pendingDigest} (since ${pin.pendingSince})`,
    ...lineDiff(before, JSON.stringify(pin.pendingDefinition, null, 2)),
    '',
    pin.duplicatedSince !== null
      ? 'it cannot be approved while its server lists it twice'
      : `approve with: portcullis pins approve ${connection} ${tool} --digest ${pin.pendingDigest}`,
  ];
  process.stdout.write(`${printable(lines.join('\n'))}\n`);
}

export async function pinsShowAction(connection: string, tool: string, opts: GatewayCommandOptions & { json?: boolean }): Promise<void> {
  const base = await gatewayBaseUrl('pins', opts.gateway, opts.config);
  const { pin } = (await callGateway('pins', base, 'GET', pinPath(connection, tool))) as { pin: Pin };
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(pin)}\n`);
    return;
  }
  const lines = [
    `tool '${pin.tool}' on '${pin.connection}': ${pin.status}${pin.pendingSince ? ` since ${pin.pendingSince}` : ''}`,
    `pinned:   ${pin.digest ?? '(never approved)'}${pin.approvedBy ? `, approved by ${pin.approvedBy}` : pin.approvedAt ? ', first seen' : ''}`,
    ...(pin.pendingDigest ? [`waiting:  ${pin.pendingDigest}`] : []),
    ...(pin.duplicatedSince !== null ? [listedTwice(pin)] : []),
    ...(pin.alsoOfferedBy.length > 0 ? [`also offered by: ${pin.alsoOfferedBy.join(', ')}`] : []),
    ...(pin.pendingReasons.length > 0 ? ['why the waiting definition is suspicious:', ...reasonLines(pin.pendingReasons)] : []),
    ...(pin.reasons.length > 0 ? ['why the pinned definition was flagged:', ...reasonLines(pin.reasons)] : []),
    ...(pin.definition ? ['pinned definition:', JSON.stringify(pin.definition, null, 2)] : []),
    ...(pin.pendingDefinition
      ? ['waiting definition:', JSON.stringify(pin.pendingDefinition, null, 2), '', `see the change: portcullis pins diff ${connection} ${tool}`]
      : []),
  ];
  process.stdout.write(`${printable(lines.join('\n'))}\n`);
}

export async function pinsApproveAction(connection: string, tool: string, opts: GatewayCommandOptions & { digest?: string }): Promise<void> {
  const base = await gatewayBaseUrl('pins', opts.gateway, opts.config);
  const { pin } = (await callGateway('pins', base, 'POST', `${pinPath(connection, tool)}/approve`, opts.digest ? { digest: opts.digest } : {})) as {
    pin: Pin;
  };
  process.stdout.write(`tool '${pin.tool}' on '${pin.connection}' pinned at ${short(pin.digest)}, approved by ${pin.approvedBy}\n`);
}
