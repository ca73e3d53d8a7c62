import assert from 'node:assert/strict';
import type { TestGateway } from './gateway.js';
import { modernBody, modernHeaders, type RawAnswer, rawRequest } from './modern.js';

/** An MRTR round opened on one replica: the call's headers, its requestState, and the body of its retry. */
export interface OpenRound {
  headers: Array<[string, string]>;
  retry: string;
  requestState: string;
}

/**
 * An MRTR round opened on `gw` by a 2026-07-28 call of the everything server's elicitation tool on its `everything`
 * connection, as the holder of `auth` (listed first, as a client does: a tool never listed is not yet pinned, so its
 * call is held back): the call's headers, its requestState, and the body of its retry, which declines what the round asks.
 */
export async function openRound(gw: TestGateway, auth: Record<string, string>): Promise<OpenRound> {
  const headers: Array<[string, string]> = [...modernHeaders('tools/call', 'trigger-elicitation-request'), ['authorization', auth.authorization!]];
  const params = {
    name: 'trigger-elicitation-request',
    arguments: {},
    _meta: { 'io.modelcontextprotocol/clientCapabilities': { elicitation: { form: {} } } },
  };
  const listed = await rawRequest(
    gw.mcp('everything'),
    'POST',
    [...modernHeaders('tools/list'), ['authorization', auth.authorization!]],
    JSON.stringify(modernBody('tools/list', {}, 0)),
  );
  assert.equal(listed.status, 200, listed.body);
  const first = await rawRequest(gw.mcp('everything'), 'POST', headers, JSON.stringify(modernBody('tools/call', params, 1)));
  const round = first.json?.result as { resultType: string; inputRequests: Record<string, unknown>; requestState: string };
  assert.equal(round?.resultType, 'input_required', first.body);
  const inputResponses = Object.fromEntries(Object.keys(round.inputRequests).map((k) => [k, { action: 'decline' }]));
  const retry = JSON.stringify(modernBody('tools/call', { ...params, inputResponses, requestState: round.requestState }, 2));
  return { headers, retry, requestState: round.requestState };
}

/** Sends a round's retry to `gw` (forwarded over the hop to the replica holding the round, unless it is that one). */
export function retryRound(gw: TestGateway, round: OpenRound): Promise<RawAnswer> {
  return rawRequest(gw.mcp('everything'), 'POST', round.headers, round.retry);
}

/** Asserts a round's retry was taken: answered 200 with the call's result, not another round nor an error. */
export function assertRetryTaken(retried: RawAnswer, what: string): void {
  assert.equal(retried.status, 200, `${what}: ${retried.body}`);
  assert.equal(retried.json?.error, undefined, `${what}: ${retried.body}`);
  assert.notEqual(retried.json?.result?.resultType, 'input_required', `${what}: ${retried.body}`);
}
