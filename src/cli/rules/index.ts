import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { requestFacts } from '../../policy/facts.js';
import { RuleSet, type RuleTrace } from '../../policy/rules.js';
import type { JsonRpcRequest } from '../../protocol/jsonrpc.js';
import { configForCommand } from '../load-config.js';

/** `portcullis rules test`: the configured guardrail rules against a sample request, and which one decides and why. */

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

interface Options {
  config?: string;
  connection?: string;
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
function sampleRequest(o: Options): JsonRpcRequest {
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

export function rulesCommand(): Command {
  const rules = new Command('rules').description('guardrail rules: try them against a sample request');
  rules.addCommand(
    new Command('test')
      .description('evaluate the configured rules against a sample request; prints each rule tried, the one that decides and why')
      .option('-c, --config <file>', "the gateway's config file (without it, the embedded defaults)")
      .option('--connection <name>', 'the connection the request is on (default: the first)')
      .option('--request <file>', 'a JSON-RPC request to test, from a file (- for standard input)')
      .option('--tool <name>', 'a tools/call of this tool')
      .option('--arguments <json>', "the tool's or prompt's arguments, as a JSON object")
      .option('--prompt <name>', 'a prompts/get of this prompt')
      .option('--uri <uri>', 'a resources/read of this resource')
      .option('--method <method>', 'any other method', 'tools/list')
      .option('--annotations <json>', "the tool's annotations as its server declares them, as a JSON object")
      .option('--user <subject>', 'the caller', 'tester')
      .option('--email <email>', "the caller's e-mail")
      .option('--groups <list>', "the caller's groups, comma-separated", '')
      .option('--json', 'print the result as JSON')
      .action((o: Options) => {
        const config = configForCommand(o.config);
        const name = o.connection ?? [...config.connections.keys()][0]!;
        const connection = config.connections.get(name);
        if (connection === undefined)
          fail(`there is no connection named ${JSON.stringify(name)}; the config has: ${[...config.connections.keys()].join(', ')}`);
        const request = sampleRequest(o);
        const groups = o.groups
          .split(',')
          .map((g) => g.trim())
          .filter((g) => g !== '');
        const identity = { subject: o.user, issuer: '(rules test)', groups, ...(o.email ? { email: o.email } : {}) };
        const session = { connection: name, identity };
        const annotations = jsonOption('--annotations', o.annotations) ?? {};
        const facts = requestFacts(request, session, () => annotations);
        const trace: RuleTrace[] = [];
        const decision = new RuleSet(config.rules).decide(facts, connection.guardrails, trace);
        if (o.json) {
          process.stdout.write(`${JSON.stringify({ request, trace, decision }, null, 2)}\n`);
          return;
        }
        const lines = [`${request.method}${facts.tool.name ? ` ${facts.tool.name}` : ''} on '${name}' by ${o.user} (groups: ${groups.join(', ') || 'none'})`];
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
      }),
  );
  return rules;
}
