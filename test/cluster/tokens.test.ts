import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HopAuth, hopSkewMs } from '../../src/cluster/hop-auth.js';
import { SessionIds } from '../../src/cluster/session-ids.js';
import { TokenKeys } from '../../src/cluster/token-keys.js';

/** The sealed tokens of replicas: session ids naming their owner, and the hop's signature. */

const key1 = 'k1'.repeat(16);
const key2 = 'k2'.repeat(16);
const ids = (instance: string, ...secrets: string[]) => new SessionIds(new TokenKeys(secrets).ring('session id'), instance);

describe('sealed session ids', () => {
  it('name their owner to every replica sharing the key, and are unique, URL-safe and never start with a dash', () => {
    const a = ids('gw-a', key1);
    const minted = new Set(Array.from({ length: 200 }, () => a.mint()));
    assert.equal(minted.size, 200);
    for (const id of minted) {
      assert.match(id, /^[A-Za-z0-9_][A-Za-z0-9_-]+$/);
      assert.equal(ids('gw-b', key1).ownerOf(id), 'gw-a');
    }
  });

  it("are minted under any key, even one whose key id begins with '-' (the id once began with it, and minting never ended)", () => {
    // Secrets whose session-id key has a kid beginning with '-': found by trying, so the case is certainly covered.
    const dashed: string[] = [];
    for (let i = 0; dashed.length < 2; i++) {
      const secret = `dash-kid-secret-${i}-`.padEnd(40, 'x');
      if (new TokenKeys([secret]).ring('session id').current.kid.startsWith('-')) dashed.push(secret);
    }
    for (const secret of dashed) {
      const minting = ids('gw-a', secret);
      for (let n = 0; n < 50; n++) {
        const id = minting.mint();
        assert.ok(!id.startsWith('-'), id);
        assert.equal(ids('gw-b', secret).ownerOf(id), 'gw-a');
      }
    }
  });

  it('hide the instance id', () => {
    const id = ids('gw-secret-name', key1).mint();
    assert.ok(!Buffer.from(id, 'base64url').toString('latin1').includes('gw-secret-name'));
  });

  it('are unknown when altered, forged, or sealed under another key; accepted under an old key kept for rotation', () => {
    const id = ids('gw-a', key1).mint();
    const b = ids('gw-b', key1);
    for (let i = 0; i < id.length; i++) {
      const altered = id.slice(0, i) + (id[i] === 'A' ? 'B' : 'A') + id.slice(i + 1);
      assert.equal(b.ownerOf(altered), undefined, `altered at ${i}`);
    }
    assert.equal(b.ownerOf(`${id}A`), undefined);
    assert.equal(b.ownerOf(id.slice(0, -1)), undefined);
    assert.equal(b.ownerOf('x'.repeat(5000)), undefined);
    assert.equal(b.ownerOf('not base64!'), undefined);
    assert.equal(ids('gw-b', key2).ownerOf(id), undefined);
    assert.equal(ids('gw-b', key2, key1).ownerOf(id), 'gw-a');
    // A requestState key is not a session id key, though both come from one secret.
    const otherPurpose = new SessionIds(new TokenKeys([key1]).ring('requestState'), 'gw-b');
    assert.equal(otherPurpose.ownerOf(id), undefined);
  });
});

describe('the hop signature', () => {
  const auth = () => new HopAuth('s'.repeat(32), 'gw-b');
  const caller = { identity: { subject: 'ada', issuer: 'https://idp', groups: ['eng'] }, access: 'group eng' };
  const now = 1_700_000_000_000;

  it('carries the caller for exactly the request signed', () => {
    const b = auth();
    const headers = { ...auth().sign('POST', '/mcp/x', { 'mcp-session-id': 'sid' }, '{"a":1}', caller, 'gw-b', now), 'mcp-session-id': 'sid' };
    const ok = b.verify('POST', '/mcp/x', headers, '{"a":1}', now + 1000);
    assert.ok('caller' in ok);
    assert.deepEqual(ok.caller, caller);
    assert.deepEqual([...ok.signed], ['mcp-session-id']);
    for (const [method, target, sid, body] of [
      ['GET', '/mcp/x', 'sid', '{"a":1}'],
      ['POST', '/mcp/y', 'sid', '{"a":1}'],
      ['POST', '/mcp/x', 'other', '{"a":1}'],
      ['POST', '/mcp/x', 'sid', '{"a":2}'],
    ] as const) {
      assert.deepEqual(auth().verify(method, target, { ...headers, 'mcp-session-id': sid }, body, now), {
        refused: 'bad hop signature',
        code: 'bad-signature',
      });
    }
  });

  it('covers every forwarded header: one altered, or one the owner acts on added unsigned, refuses the hop', () => {
    const forwarded = {
      accept: 'application/json, text/event-stream',
      'content-type': 'application/json',
      'mcp-session-id': 'sid',
      'mcp-protocol-version': '2025-11-25',
      'last-event-id': 'sid_4',
      'user-agent': 'sdk',
    };
    const headers: Record<string, string> = { ...forwarded, ...auth().sign('GET', '/mcp/x', forwarded, '', caller, 'gw-b', now) };
    assert.ok('caller' in auth().verify('GET', '/mcp/x', headers, '', now));
    for (const [name, value] of [
      ['accept', 'application/json'],
      ['content-type', 'text/plain'],
      ['last-event-id', 'sid_1'],
      ['mcp-protocol-version', '2025-06-18'],
      ['user-agent', 'other'],
    ] as const) {
      assert.deepEqual(auth().verify('GET', '/mcp/x', { ...headers, [name]: value }, '', now), { refused: 'bad hop signature', code: 'bad-signature' }, name);
    }
    // Removed: its absence is signed too.
    const { 'last-event-id': _dropped, ...without } = headers;
    assert.deepEqual(auth().verify('GET', '/mcp/x', without, '', now), { refused: 'bad hop signature', code: 'bad-signature' });
    // Added unsigned: a header the owner acts on refuses the hop; any other is dropped by keepSigned, not refused.
    const bare = auth().sign('GET', '/mcp/x', {}, '', caller, 'gw-b', now);
    assert.equal(bare['portcullis-hop-signed'], '-');
    for (const name of ['last-event-id', 'mcp-session-id', 'mcp-method', 'mcp-param-region', 'accept', 'content-type']) {
      assert.deepEqual(auth().verify('GET', '/mcp/x', { ...bare, [name]: 'x' }, '', now), { refused: `unsigned ${name} header on a hop`, code: 'malformed' });
    }
    const viaProxy = auth().verify('GET', '/mcp/x', { ...bare, 'x-forwarded-for': '10.0.0.9' }, '', now);
    assert.ok('signed' in viaProxy && !viaProxy.signed.has('x-forwarded-for'));
    // The list of signed names is itself signed: naming fewer or more refuses it.
    const fewer = { ...headers, 'portcullis-hop-signed': 'accept,content-type,mcp-protocol-version,mcp-session-id,user-agent' };
    assert.deepEqual(auth().verify('GET', '/mcp/x', fewer, '', now), { refused: 'unsigned last-event-id header on a hop', code: 'malformed' });
    const more = { ...headers, 'x-more': '1', 'portcullis-hop-signed': `${headers['portcullis-hop-signed']},x-more` };
    assert.deepEqual(auth().verify('GET', '/mcp/x', more, '', now), { refused: 'bad hop signature', code: 'bad-signature' });
  });

  it('refuses another secret, another caller, a stale time, and missing or malformed credentials', () => {
    const headers = { ...auth().sign('GET', '/mcp/x', {}, '', caller, 'gw-b', now) };
    assert.deepEqual(new HopAuth('t'.repeat(32), 'gw-b').verify('GET', '/mcp/x', headers, '', now), { refused: 'bad hop signature', code: 'bad-signature' });
    const otherCaller = Buffer.from(JSON.stringify({ ...caller, identity: { ...caller.identity, subject: 'eve' } })).toString('base64url');
    assert.deepEqual(auth().verify('GET', '/mcp/x', { ...headers, 'portcullis-hop-caller': otherCaller }, '', now), {
      refused: 'bad hop signature',
      code: 'bad-signature',
    });
    assert.match((auth().verify('GET', '/mcp/x', headers, '', now + 61_000) as { refused: string }).refused, /clock skew/);
    assert.match((auth().verify('GET', '/mcp/x', {}, '', now) as { refused: string }).refused, /missing/);
    assert.match((auth().verify('GET', '/mcp/x', { ...headers, 'portcullis-hop': 's'.repeat(32) }, '', now) as { refused: string }).refused, /malformed/);
  });

  it('is taken once: a replayed hop is refused, and a fresh signature of the same request is not', () => {
    const b = auth();
    const signed = () => ({ ...auth().sign('POST', '/mcp/x', { 'mcp-session-id': 'sid' }, '{"a":1}', caller, 'gw-b', now), 'mcp-session-id': 'sid' });
    const headers = signed();
    assert.ok('caller' in b.verify('POST', '/mcp/x', headers, '{"a":1}', now));
    assert.deepEqual(b.verify('POST', '/mcp/x', headers, '{"a":1}', now + 30_000), { refused: 'replayed hop signature', code: 'replayed' });
    // The same request signed again (the same millisecond) has its own nonce, so it is a new hop.
    assert.ok('caller' in b.verify('POST', '/mcp/x', signed(), '{"a":1}', now + 30_000));
    // Remembered until its time refuses it anyway; then forgotten (the memory stays bounded).
    assert.match((b.verify('POST', '/mcp/x', headers, '{"a":1}', now + 121_000) as { refused: string }).refused, /clock skew/);
  });

  it('remembers a signature for as long as its time passes: one stamped exactly the skew ahead is refused as a replay to the last millisecond', () => {
    const b = auth();
    // Signed by a clock a full skew ahead of the receiver's: accepted at once, and its time passes until now + 2·skew.
    const headers = auth().sign('GET', '/mcp/x', {}, '', caller, 'gw-b', now + hopSkewMs);
    assert.ok('caller' in b.verify('GET', '/mcp/x', headers, '', now));
    for (const later of [now + 1, now + hopSkewMs, now + 2 * hopSkewMs - 1, now + 2 * hopSkewMs]) {
      assert.deepEqual(b.verify('GET', '/mcp/x', headers, '', later), { refused: 'replayed hop signature', code: 'replayed' }, `at now + ${later - now} ms`);
    }
    assert.match((b.verify('GET', '/mcp/x', headers, '', now + 2 * hopSkewMs + 1) as { refused: string }).refused, /clock skew/);
  });

  it('is good only at the replica it was signed for, which another replica says (the signature binds it even when not said)', () => {
    const headers = auth().sign('GET', '/mcp/x', {}, '', caller, 'gw-b', now);
    assert.equal(headers['portcullis-hop-for'], 'gw-b');
    const c = new HopAuth('s'.repeat(32), 'gw-c');
    // Before its signature is even looked at: the sender then knows its owner is not at this address.
    assert.deepEqual(c.precheck(headers, now), { refused: 'not for this instance', code: 'not-for-this-instance' });
    assert.deepEqual(c.verify('GET', '/mcp/x', headers, '', now), { refused: 'not for this instance', code: 'not-for-this-instance' });
    // Not said (a sender of an earlier version), or said to be for gw-c: the signature, over gw-b, still refuses it.
    const { 'portcullis-hop-for': _for, ...unsaid } = headers;
    assert.deepEqual(c.verify('GET', '/mcp/x', unsaid, '', now), { refused: 'bad hop signature', code: 'bad-signature' });
    assert.deepEqual(c.verify('GET', '/mcp/x', { ...headers, 'portcullis-hop-for': 'gw-c' }, '', now), {
      refused: 'bad hop signature',
      code: 'bad-signature',
    });
    assert.ok('caller' in new HopAuth('s'.repeat(32), 'gw-b').verify('GET', '/mcp/x', headers, '', now));
    assert.ok('caller' in new HopAuth('s'.repeat(32), 'gw-b').verify('GET', '/mcp/x', unsaid, '', now));
  });

  it('rotates: the first secret of a list signs, any verifies, so each step of [s1], [s1, s2], [s2, s1], [s2] takes the next', () => {
    const [s1, s2] = ['s1'.repeat(16), 's2'.repeat(16)];
    const steps = [[s1], [s1, s2], [s2, s1], [s2]];
    for (const [i, signer] of steps.entries()) {
      for (const [j, verifier] of steps.entries()) {
        const headers = new HopAuth(signer, 'gw-a').sign('GET', '/mcp/x', {}, '', caller, 'gw-b', now);
        const verdict = new HopAuth(verifier, 'gw-b').verify('GET', '/mcp/x', headers, '', now);
        // Neighbouring steps (what a rolling restart puts side by side) always agree; [s1] and [s2] never do.
        if (Math.abs(i - j) <= 1) assert.ok('caller' in verdict, `${i} signs, ${j} verifies`);
        if (Math.abs(i - j) === 3) assert.deepEqual(verdict, { refused: 'bad hop signature', code: 'bad-signature' }, `${i} signs, ${j} verifies`);
      }
    }
    // A single secret is a list of one.
    const single = new HopAuth(s1, 'gw-a').sign('GET', '/mcp/x', {}, '', caller, 'gw-b', now);
    assert.ok('caller' in new HopAuth([s2, s1], 'gw-b').verify('GET', '/mcp/x', single, '', now));
    assert.throws(() => new HopAuth([], 'gw-b'), /at least one secret/);
  });
});
