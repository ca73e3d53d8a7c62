import { sessionInfo } from '../helpers/session-info.js';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { builtInDetectors } from '../../src/masking/catalog.js';
import { Masker } from '../../src/masking/engine.js';
import { replacer } from '../../src/masking/replace.js';
import { MaskStage } from '../../src/pipeline/mask.js';
import type { MessageContext } from '../../src/pipeline/stage.js';
import { ErrorCode, type JsonRpcMessage } from '../../src/protocol/jsonrpc.js';

/** The mask stage on its own: what it does to each kind of message from the server, and how it fails closed. */

const masker = new Masker({ detectors: builtInDetectors, fieldWords: ['password'], replace: replacer({ kind: 'redact' }, Buffer.alloc(32)) });
const stage = new MaskStage(() => masker);
const ctx = (direction: 'toServer' | 'toClient'): MessageContext => ({ session: sessionInfo('s', 'c', { subject: 'u', issuer: 'i', groups: [] }), direction });
const deep = JSON.parse(`${'['.repeat(1000)}1${']'.repeat(1000)}`) as unknown;

describe('the mask stage', () => {
  it('masks a response, keeping its id and shape, and reports the redactions', () => {
    const message = { jsonrpc: '2.0', id: 7, result: { content: [{ type: 'text', text: 'mail ada@example.com' }] } } as JsonRpcMessage;
    const v = stage.inspect(message, ctx('toClient'));
    assert.equal(v?.action, 'pass');
    assert.deepEqual((v as { message: unknown }).message, { jsonrpc: '2.0', id: 7, result: { content: [{ type: 'text', text: 'mail [REDACTED:email]' }] } });
    assert.deepEqual((v as { details: unknown }).details, { redactions: [{ detector: 'email', path: '$.result.content[0].text', count: 1 }] });
  });

  it('leaves messages to the server alone (masking them is for the recording only)', () => {
    assert.equal(
      stage.inspect({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { arguments: { password: 'x' } } } as JsonRpcMessage, ctx('toServer')),
      undefined,
    );
  });

  it('a response it cannot check reaches the client as an error saying it was withheld', () => {
    const v = stage.inspect({ jsonrpc: '2.0', id: 3, result: { data: deep } } as JsonRpcMessage, ctx('toClient'));
    assert.equal(v?.action, 'pass');
    const m = (v as { message: { id: number; error: { code: number; message: string } } }).message;
    assert.equal(m.id, 3);
    assert.equal(m.error.code, ErrorCode.Denied);
    assert.match(m.error.message, /withheld: .*deeper than 512 levels/);
  });

  it('a server request it cannot check is answered to the server; a notification is dropped', () => {
    const request = stage.inspect(
      { jsonrpc: '2.0', id: 'r1', method: 'sampling/createMessage', params: { messages: deep } } as JsonRpcMessage,
      ctx('toClient'),
    );
    assert.equal(request?.action, 'answer');
    assert.equal((request as { message: { id: string } }).message.id, 'r1');
    const note = stage.inspect({ jsonrpc: '2.0', method: 'notifications/message', params: { data: deep } } as JsonRpcMessage, ctx('toClient'));
    assert.deepEqual({ action: note?.action, message: (note as { message?: unknown }).message }, { action: 'answer', message: undefined });
  });
});
