import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { modernCapabilities } from '../../src/edge/modern-http.js';
import { checkParamHeaders, type ParamHeader, paramHeaders } from '../../src/edge/param-headers.js';
import { checkStandardHeaders, classifyPost, decodeHeaderValue, type HeaderValue } from '../../src/edge/request-metadata.js';
import { TokenKeys } from '../../src/cluster/token-keys.js';
import { RequestStateError, RequestStateSealer, requestDigest } from '../../src/edge/request-state.js';
import type { JsonRpcRequest } from '../../src/protocol/jsonrpc.js';
import { envelope, modernBody } from '../helpers/modern.js';

/** The units of the modern edge: era classification, header checks, Mcp-Param-* declarations, sealed request states. */

const headers = (pairs: Record<string, string>): Map<string, HeaderValue> => new Map(Object.entries(pairs).map(([k, v]) => [k, { value: v, repeated: false }]));
const standard = (method: string, name?: string) =>
  headers({ 'mcp-protocol-version': '2026-07-28', 'mcp-method': method, ...(name === undefined ? {} : { 'mcp-name': name }) });

describe('era classification', () => {
  it('2025-era requests are legacy: initialize, no envelope, a batch, a response', () => {
    assert.equal(classifyPost({ jsonrpc: '2.0', id: 1, method: 'initialize', params: {} }, headers({})).era, 'legacy');
    assert.equal(classifyPost({ jsonrpc: '2.0', id: 1, method: 'tools/list' }, headers({ 'mcp-protocol-version': '2025-11-25' })).era, 'legacy');
    assert.equal(classifyPost([{ jsonrpc: '2.0', id: 1, method: 'tools/list' }], headers({})).era, 'legacy');
    assert.equal(classifyPost({ jsonrpc: '2.0', id: 1, result: {} }, headers({})).era, 'legacy');
    assert.equal(classifyPost({ hello: 1 }, headers({})).era, 'legacy', 'not JSON-RPC, no modern claim: the legacy edge says why');
  });

  it('an envelope claim makes a request modern, and its version is taken from the body', () => {
    const v = classifyPost(modernBody('tools/list'), standard('tools/list'));
    assert.equal(v.era, 'modern');
    assert.equal(v.era === 'modern' ? v.version : undefined, '2026-07-28');
  });

  it('refuses what claims the modern era but is malformed, each with its code and the id', () => {
    const missing = classifyPost(
      { jsonrpc: '2.0', id: 7, method: 'tools/list', params: { _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28' } } },
      standard('tools/list'),
    );
    assert.deepEqual(missing.era === 'refused' && [missing.status, missing.code, missing.id], [400, -32602, 7]);
    const method = classifyPost(modernBody('tools/list', {}, 8), standard('tools/call'));
    assert.deepEqual(method.era === 'refused' && [method.status, method.code, method.id], [400, -32020, 8]);
    const noEnvelope = classifyPost({ jsonrpc: '2.0', id: 9, method: 'tools/list' }, standard('tools/list'));
    assert.deepEqual(noEnvelope.era === 'refused' && [noEnvelope.code, noEnvelope.id], [-32602, 9]);
  });
});

describe('standard header checks', () => {
  const call = modernBody('tools/call', { name: 'echo', arguments: {} }) as unknown as JsonRpcRequest;

  it('accepts matching headers, plain or base64', () => {
    assert.equal(checkStandardHeaders(call, standard('tools/call', 'echo')), undefined);
    assert.equal(checkStandardHeaders(call, standard('tools/call', `=?base64?${Buffer.from('echo').toString('base64')}?=`)), undefined);
  });

  it('refuses a mismatch, a missing, a repeated header and characters a header may not hold', () => {
    assert.equal(checkStandardHeaders(call, standard('tools/call', 'other'))?.code, -32020);
    assert.equal(checkStandardHeaders(call, standard('tools/call'))?.code, -32020);
    const repeated = standard('tools/call', 'echo');
    repeated.set('mcp-name', { value: 'echo, echo', repeated: true });
    assert.equal(checkStandardHeaders(call, repeated)?.code, -32020);
    assert.equal(checkStandardHeaders(call, standard('tools/call', 'ech\u00f6'))?.code, -32020);
    // A name that is not a string, which a lax server might coerce to the name in the header.
    const arrayName = modernBody('tools/call', { name: ['echo'], arguments: {} }) as unknown as JsonRpcRequest;
    assert.equal(checkStandardHeaders(arrayName, standard('tools/call', 'echo'))?.code, -32020);
  });

  it('decodes the base64 sentinel strictly', () => {
    assert.equal(decodeHeaderValue('plain'), 'plain');
    assert.equal(decodeHeaderValue(`=?base64?${Buffer.from('zone ü').toString('base64')}?=`), 'zone ü');
    assert.equal(decodeHeaderValue('=?base64?not base64?='), undefined);
    assert.equal(decodeHeaderValue('=?base64?YQ?='), undefined, 'padding is required');
    assert.equal(decodeHeaderValue(`=?base64?${Buffer.from([0xff, 0xfe]).toString('base64')}?=`), undefined, 'not UTF-8');
  });
});

describe('Mcp-Param-* declarations', () => {
  const schema = {
    type: 'object',
    properties: {
      region: { type: 'string', 'x-mcp-header': 'Region' },
      nested: { type: 'object', properties: { n: { type: 'integer', 'x-mcp-header': 'N' } } },
    },
  };

  it('reads declarations reachable through properties only', () => {
    assert.deepEqual(
      (paramHeaders(schema) as ParamHeader[]).map((d) => d.path.join('.')),
      ['region', 'nested.n'],
    );
    const invalid = (schema: unknown) => {
      const r = paramHeaders(schema);
      return 'invalid' in r ? r.invalid : undefined;
    };
    assert.match(invalid({ type: 'object', properties: { a: { type: 'object', 'x-mcp-header': 'A' } } }) ?? '', /not a string, integer or boolean/);
    assert.match(invalid({ type: 'object', properties: { a: { type: 'number', 'x-mcp-header': 'A' } } }) ?? '', /not a string/, 'number is not allowed');
    assert.match(invalid({ type: 'object', properties: { a: { type: 'string', 'x-mcp-header': 'Bad Name' } } }) ?? '', /not an HTTP header name/);
    assert.match(invalid({ type: 'object', properties: { a: { type: 'string', 'x-mcp-header': '' } } }) ?? '', /not an HTTP header name/);
    assert.match(
      invalid({ type: 'object', properties: { a: { type: 'string', 'x-mcp-header': 'A' }, b: { type: 'string', 'x-mcp-header': 'a' } } }) ?? '',
      /used twice/,
    );
    assert.match(
      invalid({ type: 'object', properties: { a: { type: 'array', items: { type: 'string', 'x-mcp-header': 'A' } } } }) ?? '',
      /not reachable/,
      'under items',
    );
  });

  it('compares headers with arguments, integers as numbers', () => {
    const declared = paramHeaders(schema) as ParamHeader[];
    const h = headers({ 'mcp-param-region': 'eu', 'mcp-param-n': '3.0' });
    assert.equal(checkParamHeaders(declared, { region: 'eu', nested: { n: 3 } }, h, 1), undefined);
    assert.equal(checkParamHeaders(declared, { region: 'us', nested: { n: 3 } }, h, 1)?.code, -32020);
    assert.equal(checkParamHeaders(declared, { region: 'eu', nested: { n: 4 } }, h, 1)?.code, -32020);
    assert.equal(checkParamHeaders(declared, { region: 'eu' }, headers({}), 1)?.code, -32020, 'a present argument needs its header');
    assert.equal(checkParamHeaders(declared, {}, headers({}), 1), undefined, 'an absent argument needs none');
    const twice = headers({ 'mcp-param-n': '3' });
    twice.set('mcp-param-region', { value: 'eu, eu', repeated: true });
    assert.equal(checkParamHeaders(declared, { region: 'eu', nested: { n: 3 } }, twice, 1)?.code, -32020, 'a repeated declared header');
  });

  it('ignores an Mcp-Param-* header no tool declares, whatever it holds', () => {
    const call = modernBody('tools/call', { name: 'echo', arguments: {} }) as unknown as JsonRpcRequest;
    const h = standard('tools/call', 'echo');
    h.set('mcp-param-unknown', { value: 'caf\u00e9', repeated: true });
    assert.equal(checkStandardHeaders(call, h), undefined);
  });
});

describe('sealed request states', () => {
  const claims = { principal: 'p', connection: 'c', digest: requestDigest('tools/call', { name: 'x', _meta: envelope() }), instance: 'i', round: 'r', n: 1 };

  const keys = (...secrets: string[]) => new TokenKeys(secrets).ring('requestState');
  const key1 = 'k1'.repeat(16);
  const key2 = 'k2'.repeat(16);

  it('round-trips, and ignores the framing fields in the digest', async () => {
    const sealer = new RequestStateSealer('i', 60_000, keys(key1));
    const opened = await sealer.open(await sealer.seal(claims));
    assert.deepEqual([opened.principal, opened.connection, opened.digest, opened.instance, opened.round, opened.n], ['p', 'c', claims.digest, 'i', 'r', 1]);
    assert.equal(requestDigest('tools/call', { name: 'x', inputResponses: { a: {} }, requestState: 's' }), claims.digest);
    assert.notEqual(requestDigest('tools/call', { name: 'y' }), claims.digest);
  });

  it('refuses a state sealed under another key, an altered one, and an expired one', async () => {
    const sealer = new RequestStateSealer('i', 60_000, keys(key1));
    const token = await sealer.seal(claims);
    await assert.rejects(new RequestStateSealer('i', 60_000, keys(key2)).open(token), RequestStateError);
    const parts = token.split('.');
    parts[3] = (parts[3]![0] === 'A' ? 'B' : 'A') + parts[3]!.slice(1);
    await assert.rejects(sealer.open(parts.join('.')), /altered/);
    const short = new RequestStateSealer('i', -5000, keys(key1));
    await assert.rejects(short.open(await short.seal(claims)), /expired/);
  });

  it('is opened by another replica sharing the key, and after a rotation while the old key is still accepted', async () => {
    const token = await new RequestStateSealer('a', 60_000, keys(key1)).seal(claims);
    assert.equal((await new RequestStateSealer('b', 60_000, keys(key1)).open(token)).instance, 'i');
    assert.equal((await new RequestStateSealer('b', 60_000, keys(key2, key1)).open(token)).round, 'r');
    await assert.rejects(new RequestStateSealer('b', 60_000, keys(key2)).open(token), /not issued by this gateway/);
    // A session id's key is not a requestState's: the same secret derives different keys for each purpose.
    await assert.rejects(new RequestStateSealer('b', 60_000, new TokenKeys([key1]).ring('session id')).open(token), RequestStateError);
  });
});

describe('server/discover', () => {
  it('advertises what the modern edge serves: not tasks, which it answers with 404', () => {
    const upstream = { tools: { listChanged: true }, resources: { subscribe: true }, logging: {}, tasks: { list: {}, cancel: {} } };
    assert.deepEqual(modernCapabilities(upstream), { tools: { listChanged: true }, resources: { subscribe: true }, logging: {} });
    assert.deepEqual(modernCapabilities(undefined), {});
  });
});
