import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cefExtensionValue, cefHeaderField, formatCef } from '../../src/audit/formats/cef.js';
import type { AuditRecord } from '../../src/audit/sink.js';
import { syslogFrame, syslogSinkKind } from '../../src/audit/sinks/syslog.js';
import { headerField, octetCounted, syslogMessage } from '../../src/audit/syslog/rfc5424.js';
import type { SecretSources } from '../../src/core/secrets.js';
import { version } from '../../src/version.js';

/** RFC 5424 messages, octet-counted framing (RFC 6587) and CEF, on their own: no socket, no receiver. */

const record: AuditRecord = {
  instance: 'gw-1',
  session: 's-0001',
  seq: 7,
  time: '2026-12-05T10:11:12.123456Z',
  kind: 'verdict',
  event: 'verdict',
  direction: 'toClient',
  connection: 'everything',
  subject: 'tester',
  email: 'tester@example.com',
  edge: 'streamable-http',
  payload: { stage: 'guard', action: 'answer', reason: 'rule no-secrets: refused', method: 'tools/call' },
  hash: 'ab12',
};
const options = { format: 'json' as const, appName: 'portcullis', hostname: 'gw.example.com', facility: 'audit' as const };

/** What goes on the wire: the frames' text as UTF-8. */
const wire = (...frames: string[]) => Buffer.from(frames.join(''), 'utf8');

/** Splits a stream of octet-counted frames as a receiver does: MSG-LEN, one space, that many octets. */
function splitFrames(stream: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  while (at < stream.length) {
    const space = stream.indexOf(0x20, at);
    const len = Number(stream.subarray(at, space).toString('ascii'));
    assert.ok(Number.isInteger(len) && len > 0, `a MSG-LEN at octet ${at}`);
    assert.ok(space + 1 + len <= stream.length, `the frame at octet ${at} ends inside the stream`);
    out.push(stream.subarray(space + 1, space + 1 + len));
    at = space + 1 + len;
  }
  return out;
}

test('a record is one RFC 5424 message: PRI from facility and severity, version 1, the event time in µs, host, app, instance as PROCID, kind as MSGID, no SD, the JSON record', () => {
  const [message] = splitFrames(wire(syslogFrame(record, options)));
  const text = message!.toString('utf8');
  const m = /^<(\d+)>1 (\S+) (\S+) (\S+) (\S+) (\S+) (-) (.*)$/s.exec(text);
  assert.ok(m, text);
  // facility audit (13) * 8 + warning (4): a refusal the gateway answered.
  assert.equal(m[1], String(13 * 8 + 4));
  assert.deepEqual(m.slice(2, 7), ['2026-12-05T10:11:12.123456Z', 'gw.example.com', 'portcullis', 'gw-1', 'verdict']);
  const shipped = JSON.parse(m[8]!) as AuditRecord;
  assert.equal(shipped.session, 's-0001');
  assert.equal(shipped.seq, 7);
  assert.deepEqual(shipped.payload, record.payload);

  const info = /^<(\d+)>/.exec(
    syslogFrame({ ...record, kind: 'message', event: 'message', payload: '{"jsonrpc":"2.0"}' }, options)
      .toString()
      .split(' ')
      .slice(1)
      .join(' '),
  );
  assert.equal(info?.[1], String(13 * 8 + 6));
  const local3 = syslogFrame(record, { ...options, facility: 'local3' }).toString();
  assert.match(local3, new RegExp(`^\\d+ <${19 * 8 + 4}>1 `));
});

test('JSON beyond ASCII goes as \\u escapes (so no BOM is needed) and reads back the same', () => {
  const r = { ...record, subject: 'zoë', payload: { text: 'naïve — 東京 🚪' } };
  const frame = wire(syslogFrame(r, options));
  assert.ok(
    frame.every((b) => b < 0x80),
    'every octet is ASCII',
  );
  const [message] = splitFrames(frame);
  const json = message!.toString().replace(/^(\S+ ){7}/, '');
  const back = JSON.parse(json) as AuditRecord;
  assert.equal(back.subject, 'zoë');
  assert.deepEqual(back.payload, { text: 'naïve — 東京 🚪' });
});

test('octet counting counts octets, not characters: frames with multi-byte UTF-8 (CEF, with the BOM) split back exactly', () => {
  const cef = { ...options, format: 'cef' as const };
  const a = syslogFrame({ ...record, subject: 'zoë', payload: { text: '東京\nline two' } }, cef);
  const b = syslogFrame({ ...record, seq: 8 }, cef);
  const frames = splitFrames(wire(a, b, a));
  assert.equal(frames.length, 3);
  const first = frames[0]!;
  assert.equal(Number(a.slice(0, a.indexOf(' '))), first.length);
  assert.ok(first.length > first.toString('utf8').length, 'more octets than characters');
  // RFC 5424 §6.4: a UTF-8 MSG starts with the BOM; an ASCII one has none.
  const msgStart = first.indexOf(Buffer.from('CEF:0|'));
  assert.deepEqual([...first.subarray(msgStart - 3, msgStart)], [0xef, 0xbb, 0xbf]);
  assert.equal(frames[1]!.indexOf(Buffer.from([0xef, 0xbb, 0xbf])), -1);
  assert.match(frames[1]!.toString(), /cn1=8 /);
});

test('header fields are printable ASCII without spaces, cut to the RFC lengths, NILVALUE when empty; a malformed time is NILVALUE', () => {
  assert.equal(headerField('my app\tname\u00e9', 48), 'my_app_name_');
  assert.equal(headerField('x'.repeat(60), 48), 'x'.repeat(48));
  assert.equal(headerField('', 32), '-');
  const h = { facility: 'local0' as const, severity: 6, hostname: 'h', appName: 'a', procId: '', msgId: 'm' };
  assert.equal(syslogMessage({ ...h, timestamp: '2026-12-05 10:11:12' }, 'x'), '<134>1 - h a - m - x');
  assert.equal(syslogMessage({ ...h, timestamp: '2026-12-05T10:11:12.5+02:00' }, 'x'), '<134>1 2026-12-05T10:11:12.5+02:00 h a - m - x');
  assert.equal(octetCounted('<134>1 - h a - m - é'), '21 <134>1 - h a - m - é');
  // A UTF-8 MSG starts with the BOM (U+FEFF, EF BB BF on the wire); the octet count includes it.
  assert.equal(octetCounted(syslogMessage({ ...h, timestamp: '-' }, 'é')), '24 <134>1 - h a - m - \uFEFFé');
});

test('CEF escapes | and \\ in the header, \\, = and line breaks in extension values, and leaves | alone there', () => {
  assert.equal(cefHeaderField('a|b\\c\nd'), 'a\\|b\\\\c d');
  assert.equal(cefExtensionValue('k=v|w\\x\r\ny'), 'k\\=v|w\\\\x\\r\\ny');
  const line = formatCef({
    ...record,
    // A kind a record never has, to show the header's escaping.
    kind: 'verdict|odd' as AuditRecord['kind'],
    subject: 'CN=alice\\ops',
    payload: { reason: 'a=b | c\nd' },
  });
  const [head, extension] = [line.split('|').slice(0, 8), line];
  assert.deepEqual(head.slice(0, 4), ['CEF:0', 'Portcullis', 'Portcullis', version]);
  assert.ok(line.startsWith(`CEF:0|Portcullis|Portcullis|${version}|verdict\\|odd|verdict toClient|1|`), line);
  assert.ok(!line.includes('\n'), 'one line');
  assert.match(extension, / suser=CN\\=alice\\\\ops /);
  assert.match(extension, /msg=\{"reason":"a\\=b \| c\\\\nd"\}$/);
  assert.match(extension, new RegExp(`rt=${Date.parse(record.time)} `));
  assert.match(extension, /cs1Label=session cs1=s-0001 cn1Label=seq cn1=7 /);
});

test('CEF severity: a refusal is high, a hold medium, masking low, a message informational; fields a record lacks are left out with their labels', () => {
  const sev = (payload: unknown, kind: AuditRecord['kind'] = 'verdict') => formatCef({ ...record, kind, event: kind, payload }).split('|')[6];
  assert.equal(sev({ action: 'answer' }), '7');
  assert.equal(sev({ action: 'hold' }), '5');
  assert.equal(sev({ action: 'rewrite' }), '3');
  assert.equal(sev('{"jsonrpc":"2.0"}', 'message'), '1');
  assert.equal(formatCef({ ...record, kind: 'lifecycle', event: 'gap', payload: {} }).split('|')[6], '7');
  const { direction: _d, email: _e, ...bare } = record;
  const line = formatCef(bare);
  assert.doesNotMatch(line, /cs4Label|cs6Label|cs4=|cs6=/);
});

const sources: SecretSources = {
  env: { KEY: '-----BEGIN PRIVATE KEY-----' },
  readFile: (path) => {
    if (path === '/etc/ssl/ca.pem') return '-----BEGIN CERTIFICATE-----\n';
    throw Object.assign(new Error(`no file ${path}`), { code: 'ENOENT' });
  },
};

function problems(value: unknown): string[] {
  const r = syslogSinkKind.schema(sources).safeParse(value);
  assert.equal(r.success, false, `expected ${JSON.stringify(value)} to be refused`);
  return r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

test('the syslog config: defaults, TLS material from references; a bad address, a lone cert, a literal key or a bad app name names the key and the fix', () => {
  const ok = syslogSinkKind.schema(sources).parse({ address: 'siem.example.com:6514', tls: { ca: '${file:/etc/ssl/ca.pem}', cert: 'PEM', key: '${env:KEY}' } });
  assert.deepEqual(ok.address, { host: 'siem.example.com', port: 6514 });
  assert.equal(ok.format, 'json');
  assert.equal(ok.appName, 'portcullis');
  assert.equal(ok.facility, 'audit');
  assert.equal(ok.tls?.ca, '-----BEGIN CERTIFICATE-----');
  assert.deepEqual(syslogSinkKind.schema(sources).parse({ address: '[::1]:514' }).address, { host: '::1', port: 514 });

  assert.deepEqual(problems({ address: 'siem.example.com' }), [
    'address: expected host:port such as siem.example.com:6514 or [::1]:514, found "siem.example.com"',
  ]);
  assert.deepEqual(problems({ address: 'h:70000' }), ['address: expected host:port such as siem.example.com:6514 or [::1]:514, found "h:70000"']);
  assert.deepEqual(problems({ address: 'h:514', tls: { cert: '${file:/etc/ssl/ca.pem}' } }), [
    'tls: a client certificate needs both cert and key (as ${file:…} references)',
  ]);
  assert.deepEqual(problems({ address: 'h:514', tls: { cert: 'PEM', key: '-----BEGIN PRIVATE KEY-----' } }), [
    'tls.key: the client key (tls.key) must be a reference such as ${file:/run/secrets/…} or ${env:NAME}, not a literal',
  ]);
  assert.deepEqual(problems({ address: 'h:514', tls: { ca: '${file:/nowhere.pem}' } }), [
    'tls.ca: file /nowhere.pem cannot be read (ENOENT) (referenced as ${file:/nowhere.pem})',
  ]);
  assert.deepEqual(problems({ address: 'h:514', appName: 'my gateway' }), [
    'appName: an app name is 1 to 48 printable ASCII characters without spaces (RFC 5424 APP-NAME)',
  ]);
  assert.equal(problems({ address: 'h:514', format: 'xml' }).length, 1);
  assert.equal(problems({ address: 'h:514', facility: 'local9' }).length, 1);
});
