import { readFileSync } from 'node:fs';
import { requestFacts } from '../../policy/facts.js';
import { RuleSet, type RuleTrace } from '../../policy/rules.js';
import type { JsonRpcRequest } from '../../protocol/jsonrpc.js';
import { configForCommand } from '../load-config.js';
import { type MemberSample, throughVirtual } from './through-virtual.js';

function fail(message: string): never {
  process.stderr.write(`portcullis rules test: ${message}\n`);
  process.exit(2);
}

function jsonOption(name: string, text: string | undefined): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    fail(`${name} is not JSON: ${(err as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) fail(`${name} must be a JSON object`);
  return value as Record<string, unknown>;
}

export interface RulesTestOptions {
  config?: string;
  connection?: string;
  virtual?: string;
  request?: string;
  method: string;
  tool?: string;
  arguments?: string;
  uri?: string;
  prompt?: string;
  annotations?: string;
  user: string;
  email?: string;
  groups: string;
  json?: boolean;
}

/** The sample request: a JSON-RPC request from a file, or one built from the flags. */
function sampleRequest(o: RulesTestOptions): JsonRpcRequest {
  if (o.request !== undefined) {
    let text: string;
    try {
      text = readFileSync(o.request === '-' ? 0 : o.request, 'utf8');
    } catch (err) {
      fail(`cannot read ${o.request}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    const r = jsonOption('the request file', text);
    if (typeof r?.method !== 'string') fail('the request file must hold a JSON-RPC request: an object with a method');
    return { jsonrpc: '2.0', id: 1, ...r } as JsonRpcRequest;
  }
  const args = jsonOption('--arguments', o.arguments) ?? {};
  if (o.tool !== undefined) return { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: o.tool, arguments: args } };
  if (o.prompt !== undefined) return { jsonrpc: '2.0', id: 1, method: 'prompts/get', params: { name: o.prompt, arguments: args } };
  if (o.uri !== undefined) return { jsonrpc: '2.0', id: 1, method: 'resources/read', params: { uri: o.uri } };
  return { jsonrpc: '2.0', id: 1, method: o.method, params: args };
}

/** `portcullis rules test`: the configured guardrail rules against a sample request, and which one decides and why. */
export function rulesTestAction(o: RulesTestOptions): void {
  const config = configForCommand(o.config);
  const asked = o.connection ?? [...config.connections.keys()][0]!;
  if (!config.connections.has(asked))
    fail(`there is no connection named ${JSON.stringify(asked)}; the config has: ${[...config.connections.keys()].join(', ')}`);
  // A virtual server has no rules of its own: the member serving the request judges it, seeing the virtual server too.
  const server = o.virtual ?? (config.connections.get(asked)!.upstream.kind === 'virtual' ? asked : undefined);
  let request = sampleRequest(o);
  let name = asked;
  let through: MemberSample | undefined;
  if (server !== undefined) {
    const sample = throughVirtual(config, server, asked === server || o.connection === undefined ? undefined : asked, request);
    if (typeof sample === 'string') fail(sample);
    ({ connection: name, request } = sample);
    through = sample;
  }
  const connection = config.connections.get(name)!;
  const groups = o.groups
    .split(',')
    .map((g) => g.trim())
    .filter((g) => g !== '');
  const identity = { subject: o.user, issuer: '(rules test)', groups, ...(o.email ? { email: o.email } : {}) };
  const session = { connection: name, identity, ...(through === undefined ? {} : { virtual: through.virtual }) };
  const annotations = jsonOption('--annotations', o.annotations) ?? {};
  const facts = requestFacts(request, session, () => annotations);
  const trace: RuleTrace[] = [];
  const decision = new RuleSet(config.rules).decide(facts, connection.guardrails, trace);
  if (o.json) {
    const judged = through === undefined ? {} : { connection: name, virtual: facts.virtual };
    process.stdout.write(`${JSON.stringify({ request, ...judged, trace, decision }, null, 2)}\n`);
    return;
  }
  const via = through === undefined ? '' : ` through '${through.virtual.server}'${through.exposedName ? ` as ${through.exposedName}` : ''}`;
  const lines = [`${request.method}${facts.tool.name ? ` ${facts.tool.name}` : ''} on '${name}'${via} by ${o.user} (groups: ${groups.join(', ') || 'none'})`];
  if (config.rules.length === 0) lines.push('  no rules are configured');
  for (const t of trace)
    lines.push(
      `  ${t.result === 'error' ? 'error' : t.result ? 'MATCH' : 'no   '}  ${t.rule}: ${t.when}${t.error ? `\n         the condition failed on this request: ${t.error}` : ''}`,
    );
  const by = decision.rule === undefined ? `the connection's default (guardrails.default: ${connection.guardrails.default})` : `rule '${decision.rule}'`;
  const what =
    decision.action === 'review'
      ? `review: held until ${decision.review!.approvals} approver(s) from ${(decision.review!.approvers ?? []).join(', ')} approve`
      : decision.action === 'deny'
        ? `deny${decision.message ? `: "${decision.message}"` : ''}`
        : 'allow';
  lines.push(
    `decision: ${what}, by ${decision.rule === undefined && decision.action === 'allow' && connection.guardrails.default === 'allow' ? 'default (no rule matched)' : by}`,
  );
  if (decision.error) lines.push(`  (a condition that fails counts as matching for deny and review rules, so a client cannot slip past one)`);
  process.stdout.write(`${lines.join('\n')}\n`);
}
