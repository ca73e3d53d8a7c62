import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { runCli } from '../helpers/cli.js';
import { hopPrefix } from '../../src/cluster/hop.js';
import { haproxyBinary, refuseHop } from '../helpers/haproxy.js';
import { gatewayPath, hopSpellings, notHops, send, standInReplica } from '../helpers/hop-spellings.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The deployment examples docs/deploy.md points at (issue 18) stay usable: HAProxy accepts its config (and refuses the
 * internal hop from outside, however its path is spelled), the Kubernetes
 * manifests hold what the guide says (probes on /readyz and /healthz, no session affinity, a disruption budget), and the
 * gateway config in the ConfigMap passes `portcullis config check`. examples/nginx.conf has a file of its own
 * (nginx-example.test.ts): it runs in front of real gateways.
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

  it('examples/haproxy.cfg refuses the internal hop from outside, however its path is spelled, and passes everything else', async () => {
    const text = readFileSync(join(examples, 'haproxy.cfg'), 'utf8');
    // The tests' own HAProxy (test/helpers/haproxy.ts) has the same rule.
    assert.ok(text.split('\n').some((line) => line.trim() === refuseHop));
    // A stand-in replica behind it: answers everything (its /readyz too), noting each request that reached it.
    const replica = await standInReplica();
    const front = `http://127.0.0.1:${await freePort()}`;
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-deploy-haproxy-'));
    const file = join(dir, 'haproxy.cfg');
    writeFileSync(
      file,
      text
        .replace(/^\s*bind :8443$/m, `  bind ${new URL(front).host}`)
        .replace(/^\s*server replica-1 .*$/m, `  server replica-1 127.0.0.1:${replica.port}`)
        .replace(/^\s*server replica-[23] .*\n/gm, ''),
    );
    const haproxy = spawn(haproxyBinary, ['-db', '-f', file], { stdio: 'ignore' });
    try {
      const status = async (target: string) => (await send(front, target)).status;
      await waitFor(async () => (await status('/readyz').catch(() => 0)) === 200, 'HAProxy to pass a request to the stand-in replica');
      // Every spelling the gateway takes for its hop path (checked here with its own parsing), and none reaches a replica.
      for (const target of hopSpellings) {
        assert.ok(gatewayPath(target).startsWith(`${hopPrefix}/`), `${target} is a hop path to the gateway (${gatewayPath(target)})`);
        assert.equal(await status(target), 404, target);
      }
      // The rest passes, a connection with "portcullis" in its name included.
      for (const target of notHops) assert.equal(await status(target), 200, target);
      assert.deepEqual(
        replica.reached.filter((url) => url !== '/readyz'),
        notHops,
        'only the requests that are not hops reached the replica',
      );
    } finally {
      haproxy.kill('SIGTERM');
      await once(haproxy, 'exit');
      replica.server.close();
      rmSync(dir, { recursive: true, force: true });
    }
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
        env: {
          PGPASSWORD: 'example',
          PORTCULLIS_API_TOKEN: 'example-token',
          POD_NAME: 'portcullis-5d8c7b9f4-x2k4q',
          PORTCULLIS_CLUSTER_SECRET: 'example-cluster-secret-0123456789abcdef',
          PORTCULLIS_TOKEN_KEY: 'example-token-key-0123456789abcdef-0123',
        },
      });
      assert.equal(run.code, 0, `${run.stdout}${run.stderr}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
