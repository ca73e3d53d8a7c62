import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { runCli } from '../helpers/cli.js';
import { haproxyBinary } from '../helpers/haproxy.js';

/**
 * The deployment examples docs/deploy.md points at (issue 18) stay usable: HAProxy accepts its config, the Kubernetes
 * manifests hold what the guide says (probes on /readyz and /healthz, no session affinity, a disruption budget), and the
 * gateway config in the ConfigMap passes `portcullis config check`.
 */

const examples = fileURLToPath(new URL('../../../examples/', import.meta.url));

interface Manifest {
  kind: string;
  metadata: { name: string };
  data?: Record<string, string>;
  // biome-ignore lint/suspicious/noExplicitAny: a manifest is untyped YAML, read by paths the test names
  spec?: Record<string, any>;
}

function manifests(): Manifest[] {
  const dir = join(examples, 'k8s');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) => parseAllDocuments(readFileSync(join(dir, f), 'utf8')).map((d) => d.toJS() as Manifest));
}

describe('the deployment examples (docs/deploy.md)', () => {
  it('examples/haproxy.cfg is a valid HAProxy config, balancing round-robin without stickiness, checking /readyz', () => {
    const file = join(examples, 'haproxy.cfg');
    const check = spawnSync(haproxyBinary, ['-c', '-f', file], { encoding: 'utf8' });
    assert.equal(check.status, 0, `${check.stdout}${check.stderr}`);
    const text = readFileSync(file, 'utf8');
    assert.match(text, /^\s+balance roundrobin$/m);
    assert.match(text, /uri \/readyz/);
    assert.doesNotMatch(text.replace(/#.*$/gm, ''), /\bcookie\b|stick-table|http-buffer-request|compression/);
  });

  it('the Kubernetes manifests: a Deployment probing /readyz and /healthz, a Service without affinity, a PodDisruptionBudget', () => {
    const all = manifests();
    assert.deepEqual(all.map((m) => m.kind).sort(), ['ConfigMap', 'Deployment', 'PodDisruptionBudget', 'Service']);
    const deployment = all.find((m) => m.kind === 'Deployment')!;
    const container = deployment.spec!.template.spec.containers[0];
    assert.equal(container.readinessProbe.httpGet.path, '/readyz');
    assert.equal(container.livenessProbe.httpGet.path, '/healthz');
    assert.ok(deployment.spec!.replicas >= 2);
    // The instance id the config takes from the environment is the pod's name.
    const podName = (container.env as Array<{ name: string; valueFrom?: { fieldRef?: { fieldPath?: string } } }>).find((e) => e.name === 'POD_NAME');
    assert.equal(podName?.valueFrom?.fieldRef?.fieldPath, 'metadata.name');
    const service = all.find((m) => m.kind === 'Service')!;
    assert.equal(service.spec!.sessionAffinity, 'None');
    const labels = deployment.spec!.template.metadata.labels;
    for (const m of [service, all.find((x) => x.kind === 'PodDisruptionBudget')!]) {
      const selector = m.kind === 'Service' ? m.spec!.selector : m.spec!.selector.matchLabels;
      assert.deepEqual(selector, labels, `${m.kind} selects the Deployment's pods`);
    }
    // The port the config listens on is the container's.
    const config = parseYaml(all.find((m) => m.kind === 'ConfigMap')!.data!['portcullis.yaml']!) as { listen: string };
    assert.equal(Number(config.listen.split(':').at(-1)), container.ports[0].containerPort);
  });

  it("the ConfigMap's gateway config passes `portcullis config check`", async () => {
    const configMap = manifests().find((m) => m.kind === 'ConfigMap')!;
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-deploy-example-'));
    try {
      const file = join(dir, 'portcullis.yaml');
      writeFileSync(file, configMap.data!['portcullis.yaml']!);
      const run = await runCli(['config', 'check', file], {
        env: { PGPASSWORD: 'example', PORTCULLIS_API_TOKEN: 'example-token', POD_NAME: 'portcullis-5d8c7b9f4-x2k4q' },
      });
      assert.equal(run.code, 0, `${run.stdout}${run.stderr}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
