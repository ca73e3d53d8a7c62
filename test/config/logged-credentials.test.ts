import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load.js';
import { configCredentials } from '../../src/config/logged-credentials.js';
import type { SecretSources } from '../../src/core/secrets.js';

/** The log's scrubber knows every secret the config references, whichever slice holds it. */

const secrets = {
  HEC_TOKEN: 'hec-0f3a9c2e-7b14-4d8a-9e55-1c2b3d4e5f60',
  OTLP_TOKEN: 'otlp-bearer-6d1e8f0a2b4c6e8f0a2b4c6e',
  CLUSTER_SECRET: 'cluster-secret-9a8b7c6d5e4f3a2b1c0d',
  UPSTREAM_KEY: 'upstream-key-1122334455667788aabb',
};
const sources: SecretSources = {
  env: secrets,
  readFile: (path) => {
    throw Object.assign(new Error(`no file ${path}`), { code: 'ENOENT' });
  },
};

const config = `
telemetry:
  otlp: { endpoint: "http://127.0.0.1:4318", headers: { authorization: "Bearer \${env:OTLP_TOKEN}" } }
cluster:
  secret: \${env:CLUSTER_SECRET}
audit:
  sinks:
    - name: splunk
      http: { url: "http://127.0.0.1:8088/services/collector/raw", headers: { Authorization: "Splunk \${env:HEC_TOKEN}" } }
connections:
  remote:
    http: { url: "http://127.0.0.1:9/mcp", headers: { x-api-key: "\${env:UPSTREAM_KEY}" } }
    access: { groups: ["*"] }
`;

describe('configCredentials', () => {
  it('scrubs the values of references from every slice: audit sinks, the OTLP exporter, the cluster, connections', () => {
    const scrubber = configCredentials(parseConfig(config, 'test.yaml', sources));
    for (const [name, value] of Object.entries(secrets)) {
      const line = JSON.stringify({ msg: 'something went wrong', detail: `the header was ${value}` });
      const scrubbed = scrubber.scrubJson(line);
      assert.ok(!scrubbed.includes(value), `${name} is scrubbed: ${scrubbed}`);
    }
  });

  it('leaves text that holds no referenced value alone', () => {
    const scrubber = configCredentials(parseConfig(config, 'test.yaml', sources));
    const line = JSON.stringify({ msg: 'session opened', connection: 'remote' });
    assert.equal(scrubber.scrubJson(line), line);
  });
});
