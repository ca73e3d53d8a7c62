import type { ErasureOutcome } from '../../recording/erasure.js';
import { callGateway } from '../gateway-api.js';
import type { GatewayCommandOptions } from '../gateway-command.js';
import { gatewayBaseUrl } from '../gateway-url.js';

export interface EraseFlags {
  subject?: string;
  issuer?: string;
  reason: string;
  json?: boolean;
}

/** `portcullis sessions erase`: over the gateway's API as the signed-in admin (the gateway writes the ledger). */
export async function sessionsEraseAction(sessions: string[], o: GatewayCommandOptions & EraseFlags): Promise<void> {
  if ((sessions.length === 0) === (o.subject === undefined)) {
    process.stderr.write('portcullis sessions erase: give session ids, or --subject (not both)\n');
    process.exit(2);
  }
  if (o.issuer !== undefined && o.subject === undefined) {
    process.stderr.write('portcullis sessions erase: --issuer narrows --subject; give --subject too\n');
    process.exit(2);
  }
  const base = await gatewayBaseUrl('sessions erase', o.gateway, o.config);
  const body = {
    ...(sessions.length > 0 ? { sessions } : {}),
    ...(o.subject !== undefined ? { subject: o.subject } : {}),
    ...(o.issuer !== undefined ? { issuer: o.issuer } : {}),
    reason: o.reason,
  };
  const outcome = (await callGateway('sessions erase', base, 'POST', '/api/sessions/erase', body)) as unknown as ErasureOutcome;
  if (o.json) {
    process.stdout.write(`${JSON.stringify(outcome)}\n`);
    return;
  }
  for (const e of outcome.erased) process.stdout.write(`erased      ${e.session}  (${e.subject ?? '?'} on ${e.connection ?? '?'})\n`);
  for (const id of outcome.accessRequests) process.stdout.write(`erased      access request ${id} (its reason)\n`);
  for (const n of outcome.notErased) process.stdout.write(`not erased  ${n.session}: ${n.why}\n`);
  const count = outcome.erased.length;
  process.stdout.write(
    `${count} session${count === 1 ? '' : 's'} erased${outcome.accessRequests.length ? `, ${outcome.accessRequests.length} access request(s)` : ''}; ${outcome.notErased.length} not erased\n`,
  );
  if (count === 0 && outcome.accessRequests.length === 0 && outcome.notErased.length > 0) process.exitCode = 1;
}
