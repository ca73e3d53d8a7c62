import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileCondition, type RequestFacts } from '../../src/policy/cel.js';

/**
 * The pre-check may only ever say "false" where the CEL interpreter says false too (not true, not an error): checked
 * here over many generated requests, including the awkward ones (missing keys, values of other types, groups that
 * are not strings).
 */

const conditions = [
  'tool.name == "write_file"',
  '"write_file" == tool.name',
  'tool.name == "a" || tool.name == "b"',
  'tool.name == "write_file" && arguments.path.startsWith("/etc")',
  'has(arguments.path) && arguments.path.startsWith("/secret/")',
  'has(arguments.path) || has(arguments.target)',
  '"admins" in identity.groups',
  '"admins" in identity.groups && method == "tools/call"',
  'arguments.path.endsWith(".env") || arguments.path.contains("..")',
  'arguments.mode == "force"',
  'tool.name == "t" || (has(arguments.path) && arguments.path.startsWith("/s/")) || ("never" in identity.groups && method == "tools/call")',
  'tool.annotations.destructiveHint == true || tool.name.startsWith("delete_")',
  '!(tool.name == "x")',
  'arguments.count > 3 || tool.name == "c"',
  'arguments.count >= 5 && arguments.count < 6.5',
  'arguments.count <= 1 || size(identity.groups) > 1',
  'size(arguments) >= 2',
  'arguments.?message.orValue("").matches("^drop table") || size(identity.groups) > 104',
  'arguments.?path.orValue("").matches("(^|/)\\\\.env$")',
  'arguments.?message.orValue("none") == "none"',
  'size(arguments.message) > 3',
  'tool.name == "write_file" && inputResponses.exists(r, r.method == "elicitation/create" && r.result.?content.?confirm.orValue("") == "yes")',
  'size(inputResponses) > 0 || tool.name == "a"',
  'virtual.tool == "tb__write_file"',
  'virtual.server != "" && tool.name == "a"',
  'virtual.server == "tb" || virtual.prompt.startsWith("tb__")',
];

/** A small deterministic generator (xorshift), so a failure can be replayed. */
function generator(seed: number): () => number {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

function facts(random: () => number): RequestFacts {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const args: Record<string, unknown> = {};
  if (random() < 0.6) args.path = pick(['/etc/passwd', '/secret/x', '/srv/a/.env', '/srv/../etc', 42, null, ['x'], { p: 1 }, '']);
  if (random() < 0.3) args.target = pick(['/t', 7]);
  if (random() < 0.1) args['constructor'] = pick([1, 'x']);
  if (random() < 0.3) args.mode = pick(['force', 'soft', true]);
  if (random() < 0.3) args.count = pick([1, 5, 5.5, 6.5, -0, 'many', null]);
  if (random() < 0.5) args.message = pick(['drop table users', 'hello', '😀😀', '', 3, null, ['drop table']]);
  const groups = pick([[], ['eng'], ['admins', 'eng'], ['eng', 3 as unknown as string], ['ADMINS']]);
  return {
    identity: { subject: 'u', issuer: 'i', email: '', groups },
    connection: 'c',
    method: pick(['tools/call', 'resources/read', 'tools/list']),
    tool: {
      name: pick(['write_file', 'a', 'b', 't', 'c', 'x', 'delete_all', '']),
      annotations: pick([{}, { destructiveHint: true }, { destructiveHint: 'yes' }]),
    },
    arguments: args,
    resource: { uri: '' },
    prompt: { name: '' },
    virtual: pick([
      { server: '', tool: '', prompt: '' },
      { server: 'tb', tool: 'tb__write_file', prompt: '' },
      { server: 'tb', tool: '', prompt: 'tb__p' },
    ]),
    params: {},
    inputResponses: pick([[], [{ method: 'elicitation/create', result: { action: 'accept', content: { confirm: 'yes' } } }]]),
  };
}

const outcome = (f: () => boolean): boolean | 'error' => {
  try {
    return f();
  } catch {
    return 'error';
  }
};

describe('the quick pre-check of guardrail conditions', () => {
  for (const source of conditions) {
    it(`never disagrees with the interpreter: ${source}`, () => {
      const fast = compileCondition(source);
      const exact = compileCondition(source, { preCheck: false });
      const random = generator(0x9e3779b9 ^ source.length);
      for (let i = 0; i < 2000; i++) {
        const f = facts(random);
        assert.deepEqual(
          outcome(() => fast(f)),
          outcome(() => exact(f)),
          JSON.stringify(f),
        );
      }
    });
  }
});
