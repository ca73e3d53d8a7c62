import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import { checkHostAndOrigin, type HostPolicy, loopbackHosts } from '../../src/edge/origin.js';

/** DNS-rebinding defence: which Host and Origin headers reach the gateway. */

/** The only part of a request the check reads is its headers. */
function check(policy: HostPolicy, host: string | undefined, origin?: string): string | undefined {
  const headers: Record<string, string> = {};
  if (host !== undefined) headers.host = host;
  if (origin !== undefined) headers.origin = origin;
  return checkHostAndOrigin({ headers } as unknown as IncomingMessage, policy);
}

/** As the gateway sets it on 127.0.0.1:8080 with no http.allowedOrigins: its own origins (PublicUrls) only. */
const loopback: HostPolicy = {
  allowedHosts: loopbackHosts,
  allowedOrigins: [],
  ownOrigins: () => ['http://127.0.0.1:8080', 'http://localhost:8080', 'http://[::1]:8080'],
};

describe('checkHostAndOrigin: loopback defaults', () => {
  it('the defaults are the loopback names', () => {
    assert.deepEqual([...loopbackHosts].sort(), ['127.0.0.1', '[::1]', 'localhost']);
  });

  for (const host of [
    'localhost',
    'localhost:8080',
    '127.0.0.1',
    '127.0.0.1:1',
    '127.0.0.1:65535',
    '[::1]',
    '[::1]:8080',
    'LOCALHOST:8080',
    ' localhost:80 ',
  ]) {
    it(`allows Host ${JSON.stringify(host)}`, () => assert.equal(check(loopback, host), undefined));
  }

  for (const host of [
    'evil.example',
    'evil.example:8080',
    'localhost.evil.example',
    '127.0.0.1.nip.io',
    '127.0.0.2',
    '0.0.0.0:8080',
    '::1',
    '[::2]:8080',
    'user@localhost',
    'localhost:http',
    'localhost:8080:9090',
    '',
  ]) {
    it(`refuses Host ${JSON.stringify(host)}, naming it and the setting`, () => {
      const why = check(loopback, host);
      assert.ok(why !== undefined);
      assert.ok(why.includes(`Host ${JSON.stringify(host)}`), why);
      assert.match(why, /http\.allowedHosts/);
    });
  }

  it('refuses a request without a Host header', () => {
    const why = check(loopback, undefined);
    assert.ok(why !== undefined);
    assert.match(why, /^Host "" is not allowed/);
  });

  it('without an Origin, the Host alone decides (non-browser clients)', () => {
    assert.equal(check(loopback, '127.0.0.1:8080'), undefined);
  });

  for (const origin of ['http://127.0.0.1:8080', 'http://localhost:8080', 'http://[::1]:8080']) {
    it(`allows the gateway's own Origin ${origin}`, () => assert.equal(check(loopback, '127.0.0.1:8080', origin), undefined));
  }

  // A page on a loopback host is another site: a dev server, a page another user of the machine serves.
  for (const origin of [
    'http://localhost:3000',
    'http://localhost',
    'https://127.0.0.1',
    'https://127.0.0.1:8080',
    'http://[::1]:6274',
    'HTTP://LOCALHOST:1',
    'http://127.0.0.1:8081',
  ]) {
    it(`refuses the loopback Origin ${origin} that is not the gateway's own`, () => {
      assert.equal(check(loopback, '127.0.0.1:8080', origin), `Origin ${JSON.stringify(origin)} is not allowed (http.allowedOrigins)`);
    });
  }

  for (const origin of [
    'http://evil.example',
    'https://evil.example:8080',
    'http://localhost.evil.example',
    'http://127.0.0.1.nip.io',
    'null',
    'file://',
    'ws://localhost:8080',
    'chrome-extension://abcdef',
    'not a url',
    '',
  ]) {
    it(`refuses the Origin ${JSON.stringify(origin)} even with a good Host`, () => {
      const why = check(loopback, 'localhost:8080', origin);
      assert.ok(why !== undefined, 'refused');
      assert.ok(why.includes(`Origin ${JSON.stringify(origin)}`), why);
    });
  }
});

describe('checkHostAndOrigin: configured hosts and origins', () => {
  const hosts: HostPolicy = { allowedHosts: ['gw.example.com', 'internal.example:8443'], allowedOrigins: [] };

  it('configured hosts replace the loopback defaults', () => {
    assert.equal(check(hosts, 'gw.example.com'), undefined);
    assert.equal(check(hosts, 'gw.example.com:443'), undefined);
    assert.equal(check(hosts, 'GW.EXAMPLE.COM:8080'), undefined);
    assert.ok(check(hosts, 'localhost:8080') !== undefined);
    assert.ok(check(hosts, '127.0.0.1') !== undefined);
    assert.ok(check(hosts, 'sub.gw.example.com') !== undefined);
  });

  it('a host entry with a port matches that port only', () => {
    assert.equal(check(hosts, 'internal.example:8443'), undefined);
    assert.ok(check(hosts, 'internal.example:8080') !== undefined);
    assert.ok(check(hosts, 'internal.example') !== undefined);
  });

  it('without configured origins, only the gateway’s own: not every origin on an allowed host', () => {
    const own: HostPolicy = { ...hosts, ownOrigins: () => ['https://gw.example.com'] };
    assert.equal(check(own, 'gw.example.com', 'https://gw.example.com'), undefined);
    assert.ok(check(own, 'gw.example.com', 'http://gw.example.com:8080') !== undefined);
    assert.ok(check(own, 'gw.example.com', 'https://internal.example:8443') !== undefined);
    assert.ok(check(own, 'gw.example.com', 'http://localhost:3000') !== undefined);
  });

  it('configured origins are matched exactly, and nothing else is accepted', () => {
    const origins: HostPolicy = { allowedHosts: ['gw.example.com'], allowedOrigins: ['https://console.example.com', 'http://localhost:6274'] };
    assert.equal(check(origins, 'gw.example.com', 'https://console.example.com'), undefined);
    assert.equal(check(origins, 'gw.example.com', 'http://localhost:6274'), undefined);
    for (const o of ['https://gw.example.com', 'http://console.example.com', 'https://console.example.com:443/', 'http://localhost:6275', 'null']) {
      const why = check(origins, 'gw.example.com', o);
      assert.ok(why !== undefined, o);
      assert.match(why, /http\.allowedOrigins/);
    }
  });

  it('a configured origin never excuses a foreign Host', () => {
    const origins: HostPolicy = { allowedHosts: ['gw.example.com'], allowedOrigins: ['https://evil.example'] };
    const why = check(origins, 'evil.example', 'https://evil.example');
    assert.ok(why !== undefined);
    assert.match(why, /^Host /);
  });

  it('an empty host list refuses everything', () => {
    const none: HostPolicy = { allowedHosts: [], allowedOrigins: [] };
    assert.ok(check(none, 'localhost') !== undefined);
    assert.ok(check(none, 'gw.example.com') !== undefined);
  });

  it('an IPv6 host entry matches bracketed Host headers', () => {
    const v6: HostPolicy = { allowedHosts: ['[fd00::1]'], allowedOrigins: [] };
    assert.equal(check(v6, '[fd00::1]:8080'), undefined);
    assert.equal(check(v6, '[FD00::1]'), undefined);
    assert.ok(check(v6, '[fd00::2]:8080') !== undefined);
    assert.ok(check(v6, '[fd00::1]:8080', 'http://[fd00::1]:3000') !== undefined, 'an origin is never allowed for its host alone');
  });
});

describe('checkHostAndOrigin: the gateway’s own origins', () => {
  const listed: HostPolicy = { allowedHosts: loopbackHosts, allowedOrigins: ['http://localhost:6274'], ownOrigins: () => ['http://127.0.0.1:8080'] };

  it('are allowed beside a list of other origins, which stays exact otherwise', () => {
    assert.equal(check(listed, '127.0.0.1:8080', 'http://127.0.0.1:8080'), undefined, 'the console’s own page');
    assert.equal(check(listed, '127.0.0.1:8080', 'http://localhost:6274'), undefined, 'a listed origin');
    assert.match(check(listed, '127.0.0.1:8080', 'http://127.0.0.1:8081') ?? '', /not allowed \(http\.allowedOrigins\)/, 'another port');
    assert.match(check({ ...listed, ownOrigins: undefined }, '127.0.0.1:8080', 'http://127.0.0.1:8080') ?? '', /not allowed/, 'without them, only the list');
  });
});
