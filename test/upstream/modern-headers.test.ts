import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeHeaderValue, headerParamsOf, modernHeaders } from '../../src/upstream/modern-headers.js';

const b64 = (s: string) => `=?base64?${Buffer.from(s, 'utf8').toString('base64')}?=`;

describe('modern request headers', () => {
  it('encodes values as the spec shows: plain ASCII as is, everything else in the base64 sentinel', () => {
    assert.equal(encodeHeaderValue('us-west1'), 'us-west1');
    assert.equal(encodeHeaderValue('a b'), 'a b');
    assert.equal(encodeHeaderValue('Hello, 世界'), '=?base64?SGVsbG8sIOS4lueVjA==?=');
    assert.equal(encodeHeaderValue(' padded '), '=?base64?IHBhZGRlZCA=?=');
    assert.equal(encodeHeaderValue('line1\nline2'), '=?base64?bGluZTEKbGluZTI=?=');
    assert.equal(encodeHeaderValue('=?base64?literal?='), '=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=');
    assert.equal(encodeHeaderValue('x\r\nInjected: 1'), b64('x\r\nInjected: 1'));
    assert.equal(encodeHeaderValue(''), b64(''));
  });

  it('finds x-mcp-header parameters reachable through properties, and refuses the others', () => {
    const schema = {
      type: 'object',
      properties: {
        region: { type: 'string', 'x-mcp-header': 'Region' },
        opts: { type: 'object', properties: { dry: { type: 'boolean', 'x-mcp-header': 'Dry-Run' } } },
        count: { type: 'integer', 'x-mcp-header': 'Count' },
      },
    };
    assert.deepEqual(headerParamsOf(schema), [
      { header: 'Region', path: ['region'] },
      { header: 'Dry-Run', path: ['opts', 'dry'] },
      { header: 'Count', path: ['count'] },
    ]);
    const invalid = (s: unknown) => 'invalid' in (headerParamsOf(s) as object);
    assert.ok(invalid({ type: 'object', properties: { a: { type: 'array', items: { type: 'string', 'x-mcp-header': 'A' } } } }), 'under items');
    assert.ok(invalid({ type: 'object', properties: { a: { anyOf: [{ type: 'string', 'x-mcp-header': 'A' }] } } }), 'under anyOf');
    assert.ok(invalid({ type: 'object', properties: { a: { type: 'number', 'x-mcp-header': 'A' } } }), 'a number');
    assert.ok(invalid({ type: 'object', properties: { a: { type: 'string', 'x-mcp-header': 'A B' } } }), 'not a token');
    assert.ok(invalid({ type: 'object', properties: { a: { type: 'string', 'x-mcp-header': 'A' }, b: { type: 'string', 'x-mcp-header': 'a' } } }), 'twice');
    assert.deepEqual(headerParamsOf({ type: 'object', properties: { q: { type: 'string' } } }), []);
  });

  it('builds every header from the body: method, name, parameters', () => {
    const params = [
      { header: 'Region', path: ['region'] },
      { header: 'Dry-Run', path: ['opts', 'dry'] },
      { header: 'Count', path: ['count'] },
      { header: 'Missing', path: ['nothere'] },
    ];
    const h = modernHeaders(
      { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'run sql', arguments: { region: 'Zürich', opts: { dry: false }, count: 42 } } },
      '2026-07-28',
      (tool) => (tool === 'run sql' ? params : undefined),
    );
    assert.deepEqual(h, {
      'mcp-protocol-version': '2026-07-28',
      'mcp-method': 'tools/call',
      'mcp-name': 'run sql',
      'mcp-param-region': b64('Zürich'),
      'mcp-param-dry-run': 'false',
      'mcp-param-count': '42',
    });
    const read = modernHeaders({ jsonrpc: '2.0', id: 2, method: 'resources/read', params: { uri: 'file:///é.txt' } }, '2026-07-28', () => undefined);
    assert.equal(read['mcp-name'], b64('file:///é.txt'));
    const list = modernHeaders({ jsonrpc: '2.0', id: 3, method: 'tools/list' }, '2026-07-28', () => undefined);
    assert.deepEqual(list, { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/list' });
    // A non-integer or an object where a header parameter is declared sends no header (the server decides).
    const odd = modernHeaders(
      { jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 't', arguments: { region: { x: 1 }, count: 1.5 } } },
      '2026-07-28',
      () => params,
    );
    assert.equal(odd['mcp-param-region'], undefined);
    assert.equal(odd['mcp-param-count'], undefined);
  });
});
