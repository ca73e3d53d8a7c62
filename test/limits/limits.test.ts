import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load.js';
import type { ConnectionConfig, GatewayConfig } from '../../src/config/schema.js';
import { BurstLog } from '../../src/limits/burst-log.js';
import { KeyedBuckets } from '../../src/limits/keyed.js';
import { LimitExceededError, Limits } from '../../src/limits/limits.js';
import { TokenBucket } from '../../src/limits/token-bucket.js';
import { addressKey } from '../../src/limits/unauthenticated.js';
import { ErrorCode, isRequest, type JsonRpcRequest } from '../../src/protocol/jsonrpc.js';
import { RequestLimitsObserver, RequestLimitsStage } from '../../src/limits/request-stage.js';
import { Pipeline } from '../../src/pipeline/pipeline.js';
import { pass, type Stage } from '../../src/pipeline/stage.js';
import { CapturedLog } from '../helpers/gateway.js';
import { sessionInfo } from '../helpers/session-info.js';

/** A clock the test moves by hand: nothing here sleeps. */
function manualClock(start = 1_000_000) {
  let now = start;
  return { clock: () => now, advance: (ms: number) => (now += ms) };
}

/** A gateway config through the real parser, with `limits` and the connections' own limits as given. */
function config(limits: Record<string, unknown> = {}, connectionLimits: Record<string, unknown> = {}): GatewayConfig {
  const yaml = JSON.stringify({
    limits,
    connections: {
      tools: { stdio: { command: 'node' }, limits: connectionLimits, access: { groups: ['*'] } },
      remote: { http: { url: 'http://127.0.0.1:9/mcp' }, access: { groups: ['*'] } },
    },
  });
  return parseConfig(yaml, '(test)');
}

const alice = { subject: 'alice', issuer: 'https://idp.example' };
const bob = { subject: 'bob', issuer: 'https://idp.example' };
/** The same subject from another issuer: another principal. */
const otherAlice = { subject: 'alice', issuer: 'https://other.example' };

let seq = 0;
const call = (tool = 'echo', id: number | string = ++seq): JsonRpcRequest => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params: { name: tool, arguments: {} },
});

describe('TokenBucket', () => {
  it('admits a burst, then refills at its rate, never above the burst', () => {
    const t = manualClock();
    const bucket = new TokenBucket({ perSecond: 2, burst: 3 }, t.clock);
    assert.deepEqual([bucket.take(), bucket.take(), bucket.take(), bucket.take()], [true, true, true, false]);
    assert.equal(bucket.waitMs(), 500);
    t.advance(499);
    assert.equal(bucket.take(), false);
    t.advance(1);
    assert.equal(bucket.take(), true);
    t.advance(60_000);
    assert.equal(bucket.full, true);
    assert.deepEqual([bucket.take(), bucket.take(), bucket.take(), bucket.take()], [true, true, true, false]);
  });

  it('a refund gives back a token, up to the burst; a clock that steps back drains nothing', () => {
    const t = manualClock();
    const bucket = new TokenBucket({ perSecond: 1, burst: 1 }, t.clock);
    assert.equal(bucket.take(), true);
    bucket.refund();
    bucket.refund();
    assert.equal(bucket.take(), true);
    assert.equal(bucket.take(), false);
    t.advance(-5000);
    t.advance(1000);
    assert.equal(bucket.take(), false, 'time lost to a step back is not counted twice');
  });

  it('fractional rates: one every five seconds', () => {
    const t = manualClock();
    const bucket = new TokenBucket({ perSecond: 0.2, burst: 1 }, t.clock);
    assert.equal(bucket.take(), true);
    assert.equal(bucket.waitMs(), 5000);
    t.advance(5000);
    assert.equal(bucket.take(), true);
  });
});

describe('KeyedBuckets', () => {
  it('stays within its capacity, forgetting refilled buckets first and the stalest only when it must', () => {
    const t = manualClock();
    const buckets = new KeyedBuckets(3, t.clock);
    const rate = { perSecond: 1, burst: 1 };
    assert.equal(buckets.get('a', rate).take(), true);
    assert.equal(buckets.get('b', rate).take(), true);
    buckets.get('c', rate);
    // c is full: it is the one forgotten, a and b keep their empty buckets.
    buckets.get('d', rate);
    assert.equal(buckets.size, 3);
    assert.equal(buckets.get('a', rate).take(), false);
    assert.equal(buckets.get('b', rate).take(), false);
    for (let i = 0; i < 1000; i++) buckets.get(`flood-${i}`, rate).take();
    assert.equal(buckets.size, 3, 'a flood of keys never grows the map');
  });
});

describe('BurstLog', () => {
  it('logs the first refusal of a burst, counts the rest, and their total once the key is quiet', () => {
    const t = manualClock();
    const log = new CapturedLog();
    const bursts = new BurstLog(log.logger, t.clock, 10_000);
    assert.equal(bursts.refused('k', { limit: 'x' }, 'limit reached'), true);
    for (let i = 0; i < 99; i++) {
      t.advance(10);
      assert.equal(bursts.refused('k', { limit: 'x' }, 'limit reached'), false);
    }
    assert.equal(bursts.refused('other', { limit: 'y' }, 'limit reached'), true, 'another key has its own burst');
    assert.equal(log.lines.length, 2);
    t.advance(9_999);
    bursts.sweep();
    assert.equal(log.lines.length, 2, 'not quiet long enough yet');
    t.advance(1);
    bursts.sweep();
    const summary = log.lines.find((l) => l.refused !== undefined);
    assert.equal(summary?.refused, 100);
    assert.equal(summary?.limit, 'x');
    assert.equal(bursts.refused('k', { limit: 'x' }, 'limit reached'), true, 'a new burst is logged again');
  });

  it('tracks a bounded number of bursts', () => {
    const t = manualClock();
    const bursts = new BurstLog(new CapturedLog().logger, t.clock, 10_000, 50);
    for (let i = 0; i < 1000; i++) bursts.refused(`k${i}`, {}, 'x');
    assert.equal(bursts.size, 50);
  });
});

describe('addressKey', () => {
  it('IPv4 as is, IPv4-mapped IPv6 as IPv4, IPv6 by its /64', () => {
    assert.equal(addressKey('192.0.2.7'), '192.0.2.7');
    assert.equal(addressKey('::ffff:192.0.2.7'), '192.0.2.7');
    assert.equal(addressKey('2001:db8:0:1::5'), '2001:db8:0:1::/64');
    assert.equal(addressKey('2001:DB8:0:1:aaaa:bbbb:cccc:dddd'), '2001:db8:0:1::/64');
    assert.equal(addressKey('2001:db8::1'), '2001:db8:0:0::/64');
    assert.equal(addressKey('::1'), '0:0:0:0::/64');
    assert.equal(addressKey(undefined), 'unknown');
  });
});

describe('Limits', () => {
  const setup = (limits: Record<string, unknown> = {}, connectionLimits: Record<string, unknown> = {}) => {
    const t = manualClock();
    const cfg = config(limits, connectionLimits);
    const log = new CapturedLog();
    const l = new Limits({ config: cfg.limits, log: log.logger, clock: t.clock });
    return { t, l, log, tools: cfg.connections.get('tools')!, remote: cfg.connections.get('remote')! };
  };
  const lease = (a: ReturnType<Limits['admitSession']>) => {
    if ('refused' in a) throw a.refused;
    return a.lease;
  };
  const refusal = (a: ReturnType<Limits['admitSession']>) => {
    assert.ok('refused' in a, 'refused');
    return a;
  };

  it('has defaults that leave ordinary use alone', () => {
    const cfg = config();
    assert.deepEqual(cfg.limits.principal, {
      sessions: 64,
      stdioProcesses: 16,
      sessionOpens: { perSecond: 2, burst: 60 },
      requestsInFlight: 64,
      requests: { perSecond: 100, burst: 500 },
    });
    assert.deepEqual(cfg.connections.get('tools')!.limits, { sessions: 1024, stdioProcesses: 64, requestsInFlight: 1024, tools: {} });
  });

  it('sessions per principal: the next is refused, another principal (the same subject of another issuer too) is not', () => {
    const { l, remote } = setup({ principal: { sessions: 2 } });
    const first = lease(l.admitSession(remote, alice));
    lease(l.admitSession(remote, alice));
    const refused = refusal(l.admitSession(remote, alice));
    assert.equal(refused.refused.limit, 'limits.principal.sessions');
    assert.equal(refused.record, true);
    assert.equal(refusal(l.admitSession(remote, alice)).record, false, 'the rest of the burst is counted, not recorded again');
    lease(l.admitSession(remote, bob));
    lease(l.admitSession(remote, otherAlice));
    first.release();
    first.release();
    lease(l.admitSession(remote, alice));
    assert.equal('refused' in l.admitSession(remote, alice), true, 'a double release frees one place only');
  });

  it('a virtual server’s member sessions count for their connection, processes and the gateway, not as the caller’s sessions or opens', () => {
    const { l, tools, remote } = setup({ principal: { sessions: 1, sessionOpens: { perSecond: 0.1, burst: 1 }, stdioProcesses: 2 } });
    lease(l.admitSession(remote, alice));
    const member = lease(l.admitSession(tools, alice, true));
    lease(l.admitSession(tools, alice, true));
    assert.equal(refusal(l.admitSession(tools, alice, true)).refused.limit, 'limits.principal.stdioProcesses', 'its server process is the caller’s');
    assert.equal(l.fullSessionCap(remote, alice, true), undefined, 'the caller’s own session count is not the member’s');
    assert.equal(l.fullSessionCap(remote, alice)?.limit, 'limits.principal.sessions');
    assert.equal(l.usage.sessions, 3);
    member.release();
    assert.equal(l.usage.sessions, 2);
  });

  it('stdio processes and sessions per connection, and sessions of the gateway', () => {
    const { l, tools, remote } = setup({ global: { sessions: 5 } }, { stdioProcesses: 2 });
    lease(l.admitSession(tools, alice));
    const second = lease(l.admitSession(tools, bob));
    assert.equal(refusal(l.admitSession(tools, otherAlice)).refused.limit, 'connections.tools.limits.stdioProcesses');
    lease(l.admitSession(remote, otherAlice));
    second.release();
    lease(l.admitSession(tools, otherAlice));
    lease(l.admitSession(remote, bob));
    lease(l.admitSession(remote, bob));
    assert.equal(refusal(l.admitSession(remote, { subject: 'carol', issuer: 'x' })).refused.limit, 'limits.global.sessions');
  });

  it('stdio processes per principal: its other sessions (not stdio) go on', () => {
    const { l, tools, remote } = setup({ principal: { stdioProcesses: 2 } });
    lease(l.admitSession(tools, alice));
    const second = lease(l.admitSession(tools, alice));
    assert.equal(refusal(l.admitSession(tools, alice)).refused.limit, 'limits.principal.stdioProcesses');
    lease(l.admitSession(remote, alice));
    lease(l.admitSession(tools, bob));
    second.release();
    lease(l.admitSession(tools, alice));
  });

  it('session opens per principal: a rate with bursts, with the wait in Retry-After', () => {
    const { l, t, remote } = setup({ principal: { sessionOpens: { perSecond: 0.1, burst: 2 } } });
    lease(l.admitSession(remote, alice)).release();
    lease(l.admitSession(remote, alice)).release();
    const refused = refusal(l.admitSession(remote, alice)).refused;
    assert.equal(refused.limit, 'limits.principal.sessionOpens');
    assert.equal(refused.retryAfterSeconds, 10);
    lease(l.admitSession(remote, bob));
    t.advance(10_000);
    lease(l.admitSession(remote, alice));
  });

  it('requests per principal: a rate with bursts; initialize is paced by session opens instead', () => {
    const { l, t, remote } = setup({ principal: { requests: { perSecond: 1, burst: 3 } } });
    const admit = (p = alice) => l.admitRequest('s1', remote, p, call());
    for (let i = 0; i < 3; i++) {
      assert.equal(admit(), undefined);
      l.releaseRequest('s1', seq);
    }
    const refused = admit();
    assert.ok(refused instanceof LimitExceededError);
    assert.equal(refused.limit, 'limits.principal.requests');
    assert.equal(refused.retryAfterSeconds, 1);
    assert.equal(l.admitRequest('s1', remote, alice, { jsonrpc: '2.0', id: 'init', method: 'initialize', params: {} }), undefined);
    assert.equal(l.admitRequest('s2', remote, bob, call()), undefined, 'another principal keeps its own rate');
    t.advance(1000);
    assert.equal(admit(), undefined);
  });

  it('requests in flight per principal, per connection and for the gateway, given back when answered or when the session ends', () => {
    const { l, tools, remote } = setup({ principal: { requestsInFlight: 2 }, global: { requestsInFlight: 5 } }, { requestsInFlight: 3 });
    assert.equal(l.admitRequest('a', remote, alice, call('x', 1)), undefined);
    assert.equal(l.admitRequest('a', remote, alice, call('x', 2)), undefined);
    assert.equal(l.admitRequest('a', remote, alice, call('x', 1))?.limit, 'limits.principal.requestsInFlight', 'an id reused before its answer counts again');
    assert.equal(l.admitRequest('a', remote, alice, call('x', 3))?.limit, 'limits.principal.requestsInFlight');
    assert.equal(l.admitRequest('b', tools, bob, call('x', 1)), undefined);
    assert.equal(l.admitRequest('b', tools, bob, call('x', 2)), undefined);
    assert.equal(l.admitRequest('c', tools, otherAlice, call('x', 1)), undefined);
    assert.equal(l.admitRequest('c', tools, otherAlice, call('x', 2))?.limit, 'connections.tools.limits.requestsInFlight');
    assert.equal(l.admitRequest('d', remote, { subject: 'carol', issuer: 'x' }, call('x', 1))?.limit, 'limits.global.requestsInFlight');
    l.releaseRequest('a', 1);
    assert.equal(l.admitRequest('a', remote, alice, call('x', 3)), undefined);
    l.releaseSession('b');
    assert.equal(l.usage.requestsInFlight, 3);
    assert.equal(l.admitRequest('c', tools, otherAlice, call('x', 2)), undefined);
  });

  it('a member session’s request of a virtual server counts only against the member connection: its virtual session’s request counted the caller', () => {
    const { l, tools, remote } = setup({ principal: { requestsInFlight: 1, requests: { perSecond: 1, burst: 1 } } }, { requestsInFlight: 1 });
    assert.equal(l.admitRequest('virtual', remote, alice, call('x', 1)), undefined);
    assert.equal(l.admitRequest('member', tools, alice, call('x', 1), true, true), undefined, 'neither the rate nor the principal’s requests in flight');
    assert.equal(
      l.admitRequest('member', tools, alice, call('x', 2), true, true)?.limit,
      'connections.tools.limits.requestsInFlight',
      'the member’s own limit applies',
    );
    l.releaseRequest('member', 1);
    assert.equal(l.usage.requestsInFlight, 1, 'only the virtual session’s request is in flight for the gateway');
    l.releaseRequest('virtual', 1);
    assert.equal(l.usage.requestsInFlight, 0);
  });

  it('a request refused for being over one limit does not spend another', () => {
    const { l, remote } = setup({ principal: { requestsInFlight: 1, requests: { perSecond: 1, burst: 2 } } });
    assert.equal(l.admitRequest('a', remote, alice, call('x', 1)), undefined);
    assert.equal(l.admitRequest('a', remote, alice, call('x', 2))?.limit, 'limits.principal.requestsInFlight');
    l.releaseRequest('a', 1);
    assert.equal(l.admitRequest('a', remote, alice, call('x', 3)), undefined, 'the refused request gave its token back');
  });

  it('once a request limit refused a principal, its further requests are refused early while it is still over it', () => {
    const { l, t, remote } = setup({ principal: { requests: { perSecond: 1, burst: 1 }, requestsInFlight: 1 } });
    assert.equal(l.refusesRequestsEarly(alice), undefined);
    assert.equal(l.admitRequest('a', remote, alice, call('x', 1)), undefined);
    assert.equal(l.refusesRequestsEarly(alice), undefined, 'at its limits but not refused yet: the stage decides and records');
    assert.equal(l.admitRequest('a', remote, alice, call('x', 2))?.limit, 'limits.principal.requests');
    assert.equal(l.refusesRequestsEarly(alice)?.limit, 'limits.principal.requests');
    assert.equal(l.refusesRequestsEarly(bob), undefined);
    t.advance(1000);
    assert.equal(l.refusesRequestsEarly(alice), undefined, 'the rate allows one again');
    assert.equal(l.admitRequest('a', remote, alice, call('x', 3))?.limit, 'limits.principal.requestsInFlight');
    assert.equal(l.refusesRequestsEarly(alice)?.limit, 'limits.principal.requestsInFlight');
    l.releaseRequest('a', 1);
    assert.equal(l.refusesRequestsEarly(alice), undefined, 'an answer frees a place');
  });

  it('per tool: a pattern paces the matching tools of each principal; other tools and principals go on', () => {
    const { l, t, tools } = setup({}, { tools: { 'send_*': { perSecond: 0.5, burst: 1 } } });
    assert.equal(l.admitRequest('a', tools, alice, call('send_mail')), undefined);
    const refused = l.admitRequest('a', tools, alice, call('send_sms'));
    assert.equal(refused?.limit, 'connections.tools.limits.tools.send_*');
    assert.equal(refused?.retryAfterSeconds, 2);
    assert.equal(l.admitRequest('a', tools, alice, call('read_mail')), undefined);
    assert.equal(l.admitRequest('b', tools, bob, call('send_mail')), undefined);
    t.advance(2000);
    assert.equal(l.admitRequest('a', tools, alice, call('send_mail')), undefined);
  });

  it('logs a burst of refusals once, with its total when it is over; tells of each refusal (metrics)', () => {
    const { t, log, remote } = setup();
    const counted: string[] = [];
    const l = new Limits({ config: config({ principal: { sessions: 1 } }).limits, log: log.logger, clock: t.clock, onRefused: (limit) => counted.push(limit) });
    lease(l.admitSession(remote, alice));
    for (let i = 0; i < 50; i++) l.admitSession(remote, alice);
    assert.equal(counted.length, 50);
    assert.equal(counted[0], 'limits.principal.sessions');
    assert.equal(log.lines.filter((x) => x.msg === 'limit reached: refusing').length, 1);
    t.advance(10_000);
    l.sweep();
    assert.equal(log.lines.find((x) => x.refused !== undefined)?.refused, 50);
  });

  it('unauthenticated requests: a failure spends its address allowance, a success gives it back, IPv6 by /64', () => {
    const { l, t } = setup({ unauthenticated: { perAddress: { perSecond: 1, burst: 2 }, total: { perSecond: 100, burst: 5 } } });
    const gate = l.unauthenticated;
    const enter = (address: string) => {
      const a = gate.enter(address);
      assert.ok(!(a instanceof LimitExceededError), `${address} let through`);
      return a;
    };
    for (let i = 0; i < 10; i++) enter('192.0.2.1').succeeded();
    enter('192.0.2.1');
    enter('192.0.2.1');
    const refused = gate.enter('192.0.2.1');
    assert.ok(refused instanceof LimitExceededError);
    assert.equal(refused.limit, 'limits.unauthenticated.perAddress');
    enter('2001:db8::1');
    enter('2001:db8::2');
    assert.ok(gate.enter('2001:db8::3') instanceof LimitExceededError, 'the same /64');
    enter('198.51.100.1');
    const total = gate.enter('203.0.113.9');
    assert.ok(total instanceof LimitExceededError);
    assert.equal(total.limit, 'limits.unauthenticated.total');
    t.advance(1000);
    enter('192.0.2.1');
  });

  it('remembers a bounded number of addresses', () => {
    const { l } = setup({ unauthenticated: { addresses: 100, total: { perSecond: 1, burst: 1_000_000 } } });
    for (let i = 0; i < 5000; i++) l.unauthenticated.enter(`10.0.${i >> 8}.${i & 255}`);
    assert.ok(l.unauthenticated.addresses <= 100);
  });
});

describe('limits config', () => {
  it('names the key and the fix for a bad value', () => {
    assert.throws(() => config({ principal: { sessions: 0 } }), /limits\.principal\.sessions: expected a number ≥ 1, found number 0/);
    assert.throws(() => config({ principal: { requests: { perSecond: 0 } } }), /limits\.principal\.requests\.perSecond: expected a number > 0/);
    assert.throws(() => config({}, { tools: { send: { perSecond: 1, burst: 0 } } }), /connections\.tools\.limits\.tools\.send\.burst: expected a number ≥ 1/);
    assert.throws(() => config({ principal: { session: 3 } }), /limits\.principal.*session/);
  });

  it('a connection overrides the gateway-wide connection defaults key by key', () => {
    const cfg = config({ connection: { sessions: 10, stdioProcesses: 5 } }, { stdioProcesses: 2 });
    assert.deepEqual(cfg.connections.get('tools')!.limits, {
      sessions: 10,
      stdioProcesses: 2,
      requestsInFlight: 1024,
      tools: {},
    } satisfies ConnectionConfig['limits']);
    assert.equal(cfg.connections.get('remote')!.limits.stdioProcesses, 5);
  });
});

describe('RequestLimitsStage and its observer', () => {
  const setup = (limits: Record<string, unknown>) => {
    const cfg = config(limits);
    const l = new Limits({ config: cfg.limits, log: new CapturedLog().logger, clock: manualClock().clock });
    const remote = cfg.connections.get('remote')!;
    return { l, stage: new RequestLimitsStage(l, remote), observer: new RequestLimitsObserver(l) };
  };
  const identity = { ...alice, groups: [] };
  const session = sessionInfo('s1', 'remote', identity);

  it('a request held by a later stage is counted once, though the stages before the hold run again', async () => {
    const { l, stage } = setup({ principal: { requests: { perSecond: 0.001, burst: 1 } } });
    const released = Promise.resolve(pass);
    const holder: Stage = {
      name: 'review',
      inspect: (m) => (isRequest(m) && m.method === 'tools/call' ? { action: 'hold', until: released, reason: 'review' } : undefined),
    };
    const outcome = await new Pipeline([stage, holder]).run(call('echo', 'held'), { session, direction: 'toServer' });
    assert.equal(outcome.action, 'forward', 'the rate (one request) was spent once');
    assert.equal(l.usage.requestsInFlight, 1);
  });

  it('answers a request over a limit with -31029 naming the limit and when to retry', () => {
    const { stage } = setup({ principal: { requests: { perSecond: 0.5, burst: 1 } } });
    assert.equal(stage.inspect(call('echo', 1), { session, direction: 'toServer' }), undefined);
    const verdict = stage.inspect(call('echo', 2), { session, direction: 'toServer' });
    assert.equal(verdict?.action, 'answer');
    const error = verdict?.action === 'answer' ? verdict.message?.error : undefined;
    assert.equal(error?.code, ErrorCode.RateLimited);
    assert.deepEqual(error?.data, { limit: 'limits.principal.requests', value: '0.5/s with bursts of 1', retryAfterSeconds: 2 });
  });

  it('gives a place back when the answer is delivered, the client cancels, or the session closes; an id reused in flight counts twice', () => {
    const { l, stage, observer } = setup({});
    const admit = (id: number) => assert.equal(stage.inspect(call('echo', id), { session, direction: 'toServer' }), undefined);
    admit(1);
    admit(1);
    admit(2);
    admit(3);
    assert.equal(l.usage.requestsInFlight, 4);
    observer.message(session, 'toClient', 'delivered', { jsonrpc: '2.0', id: 1, result: {} });
    assert.equal(l.usage.requestsInFlight, 3);
    observer.message(session, 'toServer', 'received', { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 2 } });
    assert.equal(l.usage.requestsInFlight, 2);
    observer.message(session, 'toClient', 'delivered', { jsonrpc: '2.0', id: 99, result: {} });
    observer.message(session, 'toClient', 'delivered', { jsonrpc: '2.0', method: 'notifications/progress', params: {} });
    assert.equal(l.usage.requestsInFlight, 2, 'nothing else gives a place back');
    observer.closed(session);
    assert.equal(l.usage.requestsInFlight, 0);
  });
});
