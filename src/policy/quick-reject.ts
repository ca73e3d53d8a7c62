/**
 * A fast, sound pre-check for guardrail conditions: from a condition's syntax tree it builds a JavaScript function
 * that answers `false` only when the CEL evaluation is certain to give false (never an error, never true) for the
 * request, and `undefined` ("ask the interpreter") otherwise. Most requests match no rule, and most rules start
 * with a tool name, a method or a group: those are turned away here in a few operations instead of a walk through
 * the CEL interpreter (about 0.1 µs per operator there). Only a few node kinds are understood; anything else is
 * "ask the interpreter", which is always right.
 */

type Facts = Record<string, unknown>;
/** false: the condition is false for these facts, for certain; undefined: not known here. */
export type QuickReject = (facts: Facts) => false | undefined;
/** A value read from the facts, or `missing` when reading it would be an error in CEL. */
type Reader = (facts: Facts) => unknown;

const missing = Symbol('missing');

interface Node {
  op: string;
  args: unknown;
}

const isNode = (v: unknown): v is Node => v !== null && typeof v === 'object' && typeof (v as Node).op === 'string';
/**
 * A map the interpreter reads as one. (It cannot type a map with its own `constructor` key and fails on it; the
 * pre-check then answers nothing, as the interpreter's failure counts as a match for deny and review rules.)
 */
const isMap = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v) && !Object.hasOwn(v, 'constructor');

/** A reader for `name`, `a.b.c` (variables and map fields) or `a.?b.orValue("literal")`, or undefined for anything else. */
function reader(node: Node): Reader | undefined {
  if (node.op === 'rcall' && Array.isArray(node.args) && node.args[0] === 'orValue') {
    const [, optional, callArgs] = node.args as [unknown, unknown, unknown];
    const fallback = Array.isArray(callArgs) && callArgs.length === 1 ? literal(callArgs[0]) : undefined;
    if (fallback === undefined || !isNode(optional) || optional.op !== '.?' || !Array.isArray(optional.args)) return undefined;
    const [from, key] = optional.args as [unknown, unknown];
    const of = isNode(from) ? reader(from) : undefined;
    if (of === undefined || typeof key !== 'string') return undefined;
    return (facts) => {
      const v = of(facts);
      if (!isMap(v)) return missing;
      return Object.hasOwn(v, key) ? v[key] : fallback;
    };
  }
  if (node.op === 'id' && typeof node.args === 'string') {
    const name = node.args;
    return (facts) => (Object.hasOwn(facts, name) ? facts[name] : missing);
  }
  if (node.op === '.' && Array.isArray(node.args) && isNode(node.args[0]) && typeof node.args[1] === 'string') {
    const of = reader(node.args[0]);
    const key = node.args[1];
    if (of === undefined) return undefined;
    return (facts) => {
      const v = of(facts);
      return isMap(v) && Object.hasOwn(v, key) ? v[key] : missing;
    };
  }
  return undefined;
}

/** A string literal, or undefined. */
function literal(node: unknown): string | undefined {
  return isNode(node) && node.op === 'value' && typeof node.args === 'string' ? node.args : undefined;
}

/** A number literal (CEL ints are bigints here), or undefined. */
function numberLiteral(node: unknown): number | undefined {
  if (!isNode(node) || node.op !== 'value') return undefined;
  return typeof node.args === 'number' ? node.args : typeof node.args === 'bigint' ? Number(node.args) : undefined;
}

/** A reader of a number: a numeric field, or `size()` of a list or map field (not of a string: CEL counts code points). */
function numberReader(node: unknown): ((facts: Facts) => number | undefined) | undefined {
  if (!isNode(node)) return undefined;
  if (
    node.op === 'call' &&
    Array.isArray(node.args) &&
    node.args[0] === 'size' &&
    Array.isArray(node.args[1]) &&
    node.args[1].length === 1 &&
    isNode(node.args[1][0])
  ) {
    const of = reader(node.args[1][0]);
    if (of === undefined) return undefined;
    return (facts) => {
      const v = of(facts);
      return Array.isArray(v) ? v.length : isMap(v) ? Object.keys(v).length : undefined;
    };
  }
  const of = reader(node);
  if (of === undefined) return undefined;
  return (facts) => {
    const v = of(facts);
    return typeof v === 'number' ? v : undefined;
  };
}

const comparisons: Record<string, (a: number, b: number) => boolean> = {
  '>': (a, b) => a > b,
  '>=': (a, b) => a >= b,
  '<': (a, b) => a < b,
  '<=': (a, b) => a <= b,
};

/** The pre-check of a condition's syntax tree (from the CEL parser); `re2` compiles the patterns of `re2Matches`. */
export function quickReject(node: unknown, re2?: (pattern: string) => (text: string) => boolean): QuickReject {
  const never: QuickReject = () => undefined;
  if (!isNode(node) || !Array.isArray(node.args)) return never;
  const args = node.args as unknown[];
  switch (node.op) {
    case '||': {
      // false || false is false; anything else (true, or an error on either side) is not certain here.
      const [a, b] = [quickReject(args[0], re2), quickReject(args[1], re2)];
      return (f) => (a(f) === false && b(f) === false ? false : undefined);
    }
    case '&&': {
      // false && anything is false in CEL, even when the other side is an error.
      const [a, b] = [quickReject(args[0], re2), quickReject(args[1], re2)];
      return (f) => (a(f) === false || b(f) === false ? false : undefined);
    }
    case '==': {
      // A string field compared with a string literal (either way round).
      const [fieldSide, text] = literal(args[1]) !== undefined ? [args[0], literal(args[1])] : [args[1], literal(args[0])];
      const field = isNode(fieldSide) ? reader(fieldSide) : undefined;
      if (text === undefined || field === undefined) return never;
      return (f) => {
        const v = field(f);
        return typeof v === 'string' && v !== text ? false : undefined;
      };
    }
    case 'in': {
      // A string literal in a list of strings.
      const text = literal(args[0]);
      const list = isNode(args[1]) ? reader(args[1]) : undefined;
      if (text === undefined || list === undefined) return never;
      return (f) => {
        const v = list(f);
        return Array.isArray(v) && v.every((x) => typeof x === 'string') && !v.includes(text) ? false : undefined;
      };
    }
    case 'call': {
      // has(map.key): false when the map lacks the key.
      const [name, callArgs] = args as [unknown, unknown];
      const target = Array.isArray(callArgs) && callArgs.length === 1 && isNode(callArgs[0]) && callArgs[0].op === '.' ? (callArgs[0] as Node) : undefined;
      if (name !== 'has' || target === undefined || !Array.isArray(target.args) || !isNode(target.args[0]) || typeof target.args[1] !== 'string') return never;
      const of = reader(target.args[0]);
      const key = target.args[1];
      if (of === undefined) return never;
      return (f) => {
        const v = of(f);
        return isMap(v) && !Object.hasOwn(v, key) ? false : undefined;
      };
    }
    case 'rcall': {
      // text.startsWith / endsWith / contains / matches(literal) on a string field.
      const [name, receiver, callArgs] = args as [unknown, unknown, unknown];
      const text = Array.isArray(callArgs) && callArgs.length === 1 ? literal(callArgs[0]) : undefined;
      const field = isNode(receiver) ? reader(receiver) : undefined;
      if (text === undefined || field === undefined) return never;
      const test =
        name === 'startsWith'
          ? (s: string) => s.startsWith(text)
          : name === 'endsWith'
            ? (s: string) => s.endsWith(text)
            : name === 'contains'
              ? (s: string) => s.includes(text)
              : name === 're2Matches' && re2 !== undefined
                ? re2(text)
                : undefined;
      if (test === undefined) return never;
      return (f) => {
        const v = field(f);
        return typeof v === 'string' && !test(v) ? false : undefined;
      };
    }
    case '>':
    case '>=':
    case '<':
    case '<=': {
      // A number (or the size of a list) against a number literal.
      const compare = comparisons[node.op]!;
      const [value, bound] = [numberReader(args[0]), numberLiteral(args[1])];
      if (value === undefined || bound === undefined) return never;
      return (f) => {
        const v = value(f);
        return v !== undefined && !compare(v, bound) ? false : undefined;
      };
    }
    default:
      return never;
  }
}
