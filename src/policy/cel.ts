import { Environment } from '@marcbachmann/cel-js';
import { RE2JS } from 're2js';
import { quickReject } from './quick-reject.js';

/**
 * Guardrail conditions in CEL, compiled and type-checked once at start against the fields a request offers, so a
 * typo (`tool.nmae`) or an unknown variable stops the gateway instead of silently never matching. `matches()`
 * runs on RE2 (linear time in its input, whatever the pattern): a client's arguments can never drive an
 * operator's pattern into catastrophic backtracking.
 */

/** What a condition can look at: one request on one session. */
export interface RequestFacts {
  identity: { subject: string; issuer: string; email: string; groups: string[] };
  connection: string;
  method: string;
  /** The tool of a tools/call (its annotations as the server declared them); empty name otherwise. */
  tool: { name: string; annotations: Record<string, unknown> };
  /** The tool's or prompt's arguments; empty otherwise. */
  arguments: Record<string, unknown>;
  resource: { uri: string };
  prompt: { name: string };
  /**
   * The virtual server the request came through (src/virtual), with the tool's or prompt's name there (prefixed or
   * renamed), while `connection`, `tool.name` and `prompt.name` are the member's own; all empty on a direct call.
   */
  virtual: { server: string; tool: string; prompt: string };
  /** The request's params, whole. */
  params: Record<string, unknown>;
  /**
   * The client's answers to the server's questions for this request (elicitation, sampling, roots), each with the
   * question's method: empty when the request is first judged, one answer when the rules judge the call again as
   * that answer arrives (an MRTR retry's `inputResponses`, or a legacy client's response).
   */
  inputResponses: InputResponse[];
}

/** One answer of the client to a server's question (`inputResponses` of a condition). */
export interface InputResponse {
  /** The question's method: elicitation/create, sampling/createMessage or roots/list. */
  method: string;
  /** What the client answered (an ElicitResult: action, content; a CreateMessageResult; a ListRootsResult). */
  result: Record<string, unknown>;
}

/** The fields, as CEL types (documented in docs/guardrails.md). */
const schema = {
  identity: { subject: 'string', issuer: 'string', email: 'string', groups: 'list<string>' },
  tool: { name: 'string', annotations: 'map<string, dyn>' },
  resource: { uri: 'string' },
  prompt: { name: 'string' },
  virtual: { server: 'string', tool: 'string', prompt: 'string' },
} as const;

export class ConditionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConditionError';
  }
}

/** A compiled condition: true or false for a request; throws when the request makes it fail (a missing key). */
export type Condition = (facts: RequestFacts) => boolean;

const regexCache = new Map<string, RE2JS>();

function re2(pattern: string): RE2JS {
  let re = regexCache.get(pattern);
  if (re === undefined) {
    re = RE2JS.compile(pattern);
    if (regexCache.size < 1000) regexCache.set(pattern, re);
  }
  return re;
}

/**
 * Two environments: one declares every field (so checking finds `tool.nmae`), the other sees the same variables as
 * plain maps, which evaluates about three times faster (no conversion of each object on every evaluation). A
 * condition is checked in the first and run in the second.
 */
function buildEnvironment(checked: boolean): Environment {
  const env = new Environment({ enableOptionalTypes: true });
  for (const [name, fields] of Object.entries(schema)) {
    if (checked) env.registerVariable({ name, schema: fields });
    else env.registerVariable(name, 'map<string, dyn>');
  }
  env
    .registerVariable('connection', 'string')
    .registerVariable('method', 'string')
    .registerVariable('arguments', 'map<string, dyn>')
    .registerVariable('params', 'map<string, dyn>')
    .registerVariable('inputResponses', 'list<map<string, dyn>>');
  env.registerFunction('string.re2Matches(string): bool', (text: string, pattern: string) => re2(pattern).matcher(text).find());
  env.registerFunction('re2Matches(string, string): bool', (text: string, pattern: string) => re2(pattern).matcher(text).find());
  return env;
}

let environments: { check: Environment; run: Environment } | undefined;

interface AstNode {
  op: string;
  args: unknown;
  start: number;
  end: number;
}

const isNode = (v: unknown): v is AstNode => v !== null && typeof v === 'object' && typeof (v as AstNode).op === 'string';

/** Every node of a parsed expression. */
function* nodes(v: unknown): Generator<AstNode> {
  if (Array.isArray(v)) for (const x of v) yield* nodes(x);
  else if (isNode(v)) {
    yield v;
    yield* nodes(v.args);
  }
}

/**
 * The source with each `matches` call renamed to the RE2 one (the engine's own uses backtracking regexes and
 * cannot be replaced), and the literal patterns among them, which are checked now rather than on first use.
 */
function withRe2Matches(source: string, ast: unknown): { source: string; patterns: string[] } {
  const edits: Array<{ from: number; to: number; text: string }> = [];
  const patterns: string[] = [];
  for (const node of nodes(ast)) {
    if ((node.op !== 'rcall' && node.op !== 'call') || !Array.isArray(node.args) || node.args[0] !== 'matches') continue;
    const callArgs = (node.op === 'rcall' ? node.args[2] : node.args[1]) as unknown[];
    const pattern = node.op === 'rcall' ? callArgs[0] : callArgs[1];
    if (isNode(pattern) && pattern.op === 'value' && typeof pattern.args === 'string') patterns.push(pattern.args);
    // The name sits between the receiver (or the call's start) and the first argument: `.matches(` or `matches(`.
    const from = node.op === 'rcall' ? (node.args[1] as AstNode).end : node.start;
    const to = (callArgs[0] as AstNode).start;
    edits.push({ from, to, text: source.slice(from, to).replace('matches', 're2Matches') });
  }
  let out = source;
  for (const e of edits.sort((a, b) => b.from - a.from)) out = out.slice(0, e.from) + e.text + out.slice(e.to);
  return { source: out, patterns };
}

/**
 * Compiles a condition; throws ConditionError saying what is wrong (syntax, unknown field, not a bool, bad regex).
 * `preCheck: false` leaves out the quick pre-check (for testing that it never disagrees with the interpreter).
 */
export function compileCondition(source: string, options: { preCheck?: boolean } = {}): Condition {
  environments ??= { check: buildEnvironment(true), run: buildEnvironment(false) };
  const env = environments.check;
  let rewritten: string;
  try {
    const { source: s, patterns } = withRe2Matches(source, env.parse(source).ast);
    for (const p of patterns) {
      try {
        re2(p);
      } catch (err) {
        throw new ConditionError(`the pattern ${JSON.stringify(p)} is not valid RE2 syntax: ${(err as Error).message}`);
      }
    }
    rewritten = s;
  } catch (err) {
    if (err instanceof ConditionError) throw err;
    throw new ConditionError(describe(err));
  }
  const checked = env.check(rewritten);
  if (!checked.valid) throw new ConditionError(describe(checked.error));
  if (checked.type !== 'bool' && checked.type !== 'dyn') throw new ConditionError(`a condition must be true or false, but this one gives a ${checked.type}`);
  const evaluate = environments.run.parse(rewritten);
  // Most requests match no rule: a sound pre-check turns most of them away without the interpreter.
  const quick = options.preCheck === false ? () => undefined : quickReject(evaluate.ast, (pattern) => (text) => re2(pattern).matcher(text).find());
  return (facts) => {
    if (quick(facts as unknown as Record<string, unknown>) === false) return false;
    const v = evaluate(facts as unknown as Record<string, unknown>);
    if (typeof v !== 'boolean') throw new ConditionError(`the condition gave ${typeof v === 'bigint' ? 'an int' : `a ${typeof v}`}, not true or false`);
    return v;
  };
}

/** An engine error's first line, in the user's own words (`matches`, not the RE2 name it runs under). */
export function describe(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return (message.split('\n')[0] ?? message).replaceAll('re2Matches', 'matches');
}
