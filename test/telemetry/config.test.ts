import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import type { GatewayConfig } from '../../src/config/schema.js';
import type { SecretSources } from '../../src/core/secrets.js';

/** The `telemetry` slice: off by default, on by config or the standard OTEL_* variables, every mistake named with its fix. */

const oneStdio = 'connections:\n  a:\n    stdio: {command: node}\n';

function sources(env: Record<string, string> = {}): SecretSources {
  return {
    env,
    readFile: (path) => {
      throw Object.assign(new Error(`no file ${path}`), { code: 'ENOENT' });
    },
  };
}

function parse(text: string, env: Record<string, string> = {}): GatewayConfig {
  return parseConfig(`${text}${oneStdio}`, 'test.yaml', sources(env));
}

function problems(text: string, env: Record<string, string> = {}): string[] {
  try {
    parse(text, env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err.problems;
  }
  assert.fail(`expected the config to be refused:\n${text}`);
}

describe('telemetry config', () => {
  it('is off by default, with no environment either', () => {
    assert.equal(parse('').telemetry, undefined);
    assert.equal(parse('telemetry: {sampling: 0.5}\n').telemetry, undefined);
  });

  it('is on with an endpoint, traces at <endpoint>/v1/traces, with defaults', () => {
    const t = parse('telemetry:\n  otlp: {endpoint: "http://collector:4318/"}\n').telemetry!;
    assert.equal(t.tracesUrl, 'http://collector:4318/v1/traces');
    assert.equal(t.sampling, 1);
    assert.equal(t.serviceName, 'portcullis');
    assert.equal(t.recordArguments, false);
  });

  it('takes the standard OTEL_* variables for what the file leaves out', () => {
    const t = parse('', {
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
      OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20abc,x-tenant=t1',
      OTEL_TRACES_SAMPLER_ARG: '0.25',
      OTEL_SERVICE_NAME: 'gw-eu',
    }).telemetry!;
    assert.equal(t.tracesUrl, 'http://collector:4318/v1/traces');
    assert.equal(t.headers.authorization?.reveal(), 'Bearer abc');
    assert.equal(t.headers['x-tenant']?.reveal(), 't1');
    assert.ok(!JSON.stringify(t.headers).includes('abc'), 'header values never print');
    assert.equal(t.sampling, 0.25);
    assert.equal(t.serviceName, 'gw-eu');
    assert.equal(parse('', { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://c.example/otlp/traces' }).telemetry!.tracesUrl, 'https://c.example/otlp/traces');
  });

  it('prefers the file over the environment, and the environment can turn it off', () => {
    const env = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://env:4318', OTEL_TRACES_SAMPLER_ARG: '0.1', OTEL_SERVICE_NAME: 'env' };
    const t = parse('telemetry:\n  otlp: {endpoint: "http://file:4318"}\n  sampling: 0.5\n  serviceName: file\n', env).telemetry!;
    assert.deepEqual([t.tracesUrl, t.sampling, t.serviceName], ['http://file:4318/v1/traces', 0.5, 'file']);
    assert.equal(parse('', { ...env, OTEL_SDK_DISABLED: 'true' }).telemetry, undefined);
    assert.equal(parse('', { ...env, OTEL_TRACES_EXPORTER: 'none' }).telemetry, undefined);
  });

  it('names the key and the fix for every mistake', () => {
    assert.ok(problems('telemetry:\n  otlp: {endpont: "http://c:4318"}\n').some((p) => p.includes('telemetry.otlp') && p.includes('endpont')));
    assert.ok(problems('telemetry:\n  sampling: 2\n').some((p) => p.startsWith('telemetry.sampling') && p.includes('≤ 1')));
    assert.ok(problems('telemetry:\n  otlp: {endpoint: "ftp://c"}\n').some((p) => p.startsWith('telemetry.otlp.endpoint')));
    const sampler = problems('', { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_SAMPLER_ARG: 'half' });
    assert.ok(
      sampler.some((p) => p.startsWith('telemetry.sampling') && p.includes('OTEL_TRACES_SAMPLER_ARG')),
      sampler.join('\n'),
    );
    const endpoint = problems('', { OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' });
    assert.ok(
      endpoint.some((p) => p.includes('OTEL_EXPORTER_OTLP_ENDPOINT') && p.includes('telemetry.otlp.endpoint')),
      endpoint.join('\n'),
    );
    assert.ok(problems('telemetry:\n  otlp:\n    headers: {authorization: "Bearer literal"}\n  ').some((p) => p.includes('reference')));
  });
});
