import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ErrorCode,
  errorResponse,
  idKey,
  InvalidMessageError,
  isNotification,
  isRequest,
  isResponse,
  type JsonRpcMessage,
  parseBody,
  splitJsonArray,
  toMessage,
} from '../../src/protocol/jsonrpc.js';

/** JSON-RPC 2.0 as the gateway reads it: every bad shape refused with the right code and, where readable, the id. */

function rejects(fn: () => unknown, expected: { code?: number; id?: string | number | null; message: RegExp }): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof InvalidMessageError, `expected InvalidMessageError, got ${String(err)}`);
    assert.equal(err.name, 'InvalidMessageError');
    assert.equal(err.code, expected.code ?? ErrorCode.InvalidRequest);
    if ('id' in expected) assert.equal(err.id, expected.id);
    assert.match(err.message, expected.message);
    return true;
  });
}

describe('parseBody', () => {
  it('parses one request, keeping every field as sent', () => {
    const { messages, batch } = parseBody('{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"x":1}}}');
    assert.equal(batch, false);
    assert.deepEqual(messages, [{ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'echo', arguments: { x: 1 } } }]);
  });

  it('parses a batch of mixed messages in order', () => {
    const { messages, batch } = parseBody(
      JSON.stringify([
        { jsonrpc: '2.0', id: 1, method: 'ping' },
        { jsonrpc: '2.0', method: 'notifications/initialized' },
        { jsonrpc: '2.0', id: 'a', result: {} },
        { jsonrpc: '2.0', id: 2, error: { code: -1, message: 'no' } },
      ]),
    );
    assert.equal(batch, true);
    assert.equal(messages.length, 4);
    assert.ok(isRequest(messages[0]!));
    assert.ok(isNotification(messages[1]!));
    assert.ok(isResponse(messages[2]!));
    assert.ok(isResponse(messages[3]!));
  });

  it('a batch of one is still a batch', () => {
    const { messages, batch } = parseBody('[{"jsonrpc":"2.0","id":1,"method":"ping"}]');
    assert.equal(batch, true);
    assert.equal(messages.length, 1);
  });

  for (const text of ['', '   ', '{', '{"jsonrpc":"2.0",}', 'not json', "{'jsonrpc':'2.0'}", '[1,2', 'undefined', '\u0000']) {
    it(`refuses text that is not JSON: ${JSON.stringify(text)}`, () => {
      rejects(() => parseBody(text), { code: ErrorCode.ParseError, id: null, message: /not valid JSON/ });
    });
  }

  it('refuses an empty batch', () => {
    rejects(() => parseBody('[]'), { id: null, message: /at least one message/ });
    rejects(() => parseBody(' [ ] '), { message: /at least one message/ });
  });

  for (const text of ['null', '1', '"ping"', 'true', '[null]', '[1]', '[[]]', '[[{"jsonrpc":"2.0","id":1,"method":"ping"}]]']) {
    it(`refuses JSON that is not an object: ${text}`, () => {
      rejects(() => parseBody(text), { code: ErrorCode.InvalidRequest, id: null, message: /must be a JSON object/ });
    });
  }

  it('refuses the whole batch when one member is invalid', () => {
    rejects(() => parseBody('[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2}]'), {
      id: 2,
      message: /"method", or exactly one of "result" and "error"/,
    });
  });

  it('refuses an id that JSON turns into Infinity', () => {
    rejects(() => parseBody('{"jsonrpc":"2.0","id":1e400,"method":"ping"}'), { id: null, message: /"id" must be a string or a number/ });
  });
});

describe('toMessage', () => {
  it('accepts a request, a notification, a result and an error, returning the same object', () => {
    const samples: unknown[] = [
      { jsonrpc: '2.0', id: 0, method: 'ping' },
      { jsonrpc: '2.0', id: '', method: 'ping' },
      { jsonrpc: '2.0', id: -3.5, method: 'x/y', params: {} },
      { jsonrpc: '2.0', method: 'notifications/progress', params: { progress: 1 } },
      { jsonrpc: '2.0', id: 'r', result: { tools: [] } },
      { jsonrpc: '2.0', id: null, error: { code: ErrorCode.ParseError, message: 'Parse error' } },
      { jsonrpc: '2.0', id: 4, error: { code: -32000, message: 'x', data: { any: 'thing' } } },
    ];
    for (const s of samples) assert.equal(toMessage(s), s);
  });

  for (const [what, value] of [
    ['null', null],
    ['a number', 42],
    ['a string', '{"jsonrpc":"2.0"}'],
    ['an array', [{ jsonrpc: '2.0', id: 1, method: 'ping' }]],
    ['undefined', undefined],
  ] as const) {
    it(`refuses ${what}`, () => rejects(() => toMessage(value), { id: null, message: /must be a JSON object/ }));
  }

  for (const jsonrpc of [undefined, '1.0', 2, 2.0, '2', '2.0 ', null]) {
    it(`refuses jsonrpc ${JSON.stringify(jsonrpc)}, answering the id it could read`, () => {
      const value: Record<string, unknown> = { id: 9, method: 'ping' };
      if (jsonrpc !== undefined) value.jsonrpc = jsonrpc;
      rejects(() => toMessage(value), { id: 9, message: /"jsonrpc" must be "2.0"/ });
    });
  }

  for (const [what, id] of [
    ['true', true],
    ['false', false],
    ['an object', { n: 1 }],
    ['an array', [1]],
    ['NaN', NaN],
    ['Infinity', Infinity],
  ] as const) {
    it(`refuses an id that is ${what}`, () => {
      rejects(() => toMessage({ jsonrpc: '2.0', id, method: 'ping' }), { id: null, message: /"id" must be a string or a number/ });
      rejects(() => toMessage({ jsonrpc: '2.0', id, result: {} }), { id: null, message: /"id" must be a string or a number/ });
    });
  }

  it('refuses a null id on a request, but accepts it on an error response', () => {
    rejects(() => toMessage({ jsonrpc: '2.0', id: null, method: 'ping' }), { id: null, message: /"id" must be a string or a number/ });
    assert.doesNotThrow(() => toMessage({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } }));
  });

  for (const method of [1, null, true, {}, [], '']) {
    it(`refuses method ${JSON.stringify(method)}`, () => {
      rejects(() => toMessage({ jsonrpc: '2.0', id: 'm', method }), { id: 'm', message: /"method" must be a non-empty string/ });
      rejects(() => toMessage({ jsonrpc: '2.0', method }), { id: null, message: /"method" must be a non-empty string/ });
    });
  }

  for (const params of [null, [], [1, 2], 'x', 3, false]) {
    it(`refuses params ${JSON.stringify(params)}`, () => {
      rejects(() => toMessage({ jsonrpc: '2.0', id: 3, method: 'tools/call', params }), { id: 3, message: /"params" must be an object/ });
      rejects(() => toMessage({ jsonrpc: '2.0', method: 'notifications/x', params }), { id: null, message: /"params" must be an object/ });
    });
  }

  it('refuses a response with both result and error', () => {
    rejects(() => toMessage({ jsonrpc: '2.0', id: 5, result: {}, error: { code: 1, message: 'x' } }), {
      id: 5,
      message: /exactly one of "result" and "error"/,
    });
  });

  it('refuses a message with neither method, result nor error', () => {
    rejects(() => toMessage({ jsonrpc: '2.0', id: 5 }), { id: 5, message: /exactly one of "result" and "error"/ });
    rejects(() => toMessage({ jsonrpc: '2.0' }), { id: null, message: /exactly one of "result" and "error"/ });
  });

  it('refuses a response without an id', () => {
    rejects(() => toMessage({ jsonrpc: '2.0', result: {} }), { id: null, message: /a response needs an "id"/ });
    rejects(() => toMessage({ jsonrpc: '2.0', error: { code: 1, message: 'x' } }), { message: /a response needs an "id"/ });
  });

  for (const [what, error] of [
    ['no code', { message: 'x' }],
    ['no message', { code: -32000 }],
    ['a string code', { code: '-32000', message: 'x' }],
    ['a numeric message', { code: -32000, message: 5 }],
    ['null', null],
    ['a string', 'boom'],
    ['an array', [-32000, 'x']],
  ] as const) {
    it(`refuses an error with ${what}`, () => {
      rejects(() => toMessage({ jsonrpc: '2.0', id: 'e', error }), {
        id: 'e',
        message: /"error" must be an object with a numeric "code" and a string "message"/,
      });
    });
  }

  for (const result of [null, 'ok', 1, [1]]) {
    it(`refuses result ${JSON.stringify(result)}`, () => {
      rejects(() => toMessage({ jsonrpc: '2.0', id: 1, result }), { id: 1, message: /"result" must be an object/ });
    });
  }
});

describe('classification', () => {
  const request: JsonRpcMessage = { jsonrpc: '2.0', id: 1, method: 'ping' };
  const stringIdRequest: JsonRpcMessage = { jsonrpc: '2.0', id: '', method: 'ping' };
  const zeroIdRequest: JsonRpcMessage = { jsonrpc: '2.0', id: 0, method: 'ping' };
  const notification: JsonRpcMessage = { jsonrpc: '2.0', method: 'notifications/initialized' };
  const result: JsonRpcMessage = { jsonrpc: '2.0', id: 1, result: {} };
  const error: JsonRpcMessage = { jsonrpc: '2.0', id: null, error: { code: -1, message: 'x' } };

  it('isRequest: a method and an id (falsy ids included)', () => {
    assert.deepEqual([request, stringIdRequest, zeroIdRequest, notification, result, error].map(isRequest), [true, true, true, false, false, false]);
  });

  it('isNotification: a method and no id', () => {
    assert.deepEqual([request, stringIdRequest, zeroIdRequest, notification, result, error].map(isNotification), [false, false, false, true, false, false]);
  });

  it('isResponse: a result or an error and no method', () => {
    assert.deepEqual([request, stringIdRequest, zeroIdRequest, notification, result, error].map(isResponse), [false, false, false, false, true, true]);
  });

  it('every valid message is exactly one kind', () => {
    for (const m of [request, stringIdRequest, zeroIdRequest, notification, result, error]) {
      assert.equal([isRequest(m), isNotification(m), isResponse(m)].filter(Boolean).length, 1, JSON.stringify(m));
    }
  });
});

describe('idKey', () => {
  it('tells 1 from "1"', () => {
    assert.notEqual(idKey(1), idKey('1'));
    const m = new Map<string, string>([[idKey(1), 'number']]);
    m.set(idKey('1'), 'string');
    assert.equal(m.size, 2);
    assert.equal(m.get(idKey(1)), 'number');
  });

  it('is stable for equal ids and distinct for different ones', () => {
    assert.equal(idKey(42), idKey(42));
    assert.equal(idKey('abc'), idKey('abc'));
    const ids = [0, 1, -1, 1.5, '', '0', '1', 'n:1', 's:1', 'abc'];
    assert.equal(new Set(ids.map(idKey)).size, ids.length);
  });
});

describe('errorResponse', () => {
  it('builds a JSON-RPC error, with data only when given', () => {
    assert.deepEqual(errorResponse(3, ErrorCode.Denied, 'no'), { jsonrpc: '2.0', id: 3, error: { code: -31003, message: 'no' } });
    assert.deepEqual(errorResponse(null, -1, 'x', { a: 1 }), { jsonrpc: '2.0', id: null, error: { code: -1, message: 'x', data: { a: 1 } } });
    assert.ok(!('data' in errorResponse('a', -1, 'x').error!));
    assert.doesNotThrow(() => toMessage(errorResponse('a', -1, 'x')));
  });
});

describe('splitJsonArray: the exact text of each batch element', () => {
  const cases: string[] = [
    '[{"a":1},{"b":2}]',
    '[ {"a" : 1} ,\n  {"b":[1,2,{"c":"]}"}]} ]',
    '[{"s":"a \\" quote, a ] and a } and a \\\\"},{"t":"\\u005d"}]',
    '[1, "two", null, true, [3, 4], {"five": 5}]',
    '[{"jsonrpc":"2.0","id":1,"method":"ping"}]',
    '[\t{"x":"\\\\\\""}\r\n]',
  ];
  for (const text of cases) {
    it(`splits ${JSON.stringify(text)}`, () => {
      const parts = splitJsonArray(text);
      const values = JSON.parse(text) as unknown[];
      assert.equal(parts.length, values.length);
      parts.forEach((p, i) => {
        assert.deepEqual(JSON.parse(p), values[i]);
        assert.ok(text.includes(p), 'each part is a slice of the original text');
        assert.equal(p, p.trim());
      });
    });
  }

  it('parseBody returns the texts as sent', () => {
    const single = ' {"jsonrpc":"2.0","id":1,"method":"ping"} ';
    assert.deepEqual(parseBody(single).texts, [single]);
    const batch = '[{"jsonrpc":"2.0","id":1,"method":"ping"}, {"jsonrpc" : "2.0","method":"notifications/initialized"}]';
    assert.deepEqual(parseBody(batch).texts, ['{"jsonrpc":"2.0","id":1,"method":"ping"}', '{"jsonrpc" : "2.0","method":"notifications/initialized"}']);
  });
});
