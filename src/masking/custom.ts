import { RE2JS } from 're2js';
import type { Detector, Finding } from './detector.js';

/**
 * Detectors from the config. A regex runs on RE2JS, an engine with RE2's semantics that takes time linear in
 * its input whatever the pattern (no backreferences, no lookaround), so an operator's pattern can never hang the
 * gateway. A JSON path masks the value at that place in a message whatever it looks like.
 */

export interface CustomRegexSpec {
  name: string;
  regex: string;
  ignoreCase?: boolean;
}

export class CustomDetectorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CustomDetectorError';
  }
}

/** Compiles an operator's regex (throws CustomDetectorError saying what RE2 does not accept). */
export function customRegexDetector(spec: CustomRegexSpec): Detector {
  let re: RE2JS;
  try {
    re = RE2JS.compile(spec.regex, spec.ignoreCase ? RE2JS.CASE_INSENSITIVE : 0);
  } catch (err) {
    throw new CustomDetectorError(`the regex of custom detector ${JSON.stringify(spec.name)} is not valid RE2 syntax: ${(err as Error).message}`);
  }
  return {
    name: spec.name,
    family: 'custom',
    category: 'secret',
    confidence: 'medium',
    onByDefault: true,
    find(text: string, _lower: () => string, out: Finding[]) {
      const m = re.matcher(text);
      while (m.find()) {
        const start = m.start();
        const end = m.end();
        if (end > start) out.push({ start, end, detector: spec.name });
      }
    },
  };
}

/** One step of a JSON path: a key, an index, any key or index (`*`), or any depth (`..`). */
type Step = { key: string } | { index: number } | { any: true } | { descend: true };

/**
 * A JSON path in the subset operators write: `$.result.structuredContent.ssn`, `$..password`,
 * `$.result.content[*].text`, `$['odd key'][0]`. Matched against where a value is in a message.
 */
export class JsonPathRule {
  readonly #steps: Step[];

  constructor(
    readonly name: string,
    readonly path: string,
  ) {
    this.#steps = parsePath(path, name);
  }

  matches(at: ReadonlyArray<string | number>): boolean {
    return match(this.#steps, 0, at, 0);
  }
}

function parsePath(path: string, name: string): Step[] {
  const fail = (why: string): never => {
    throw new CustomDetectorError(
      `the jsonPath of custom detector ${JSON.stringify(name)} ${why}: ${JSON.stringify(path)} (e.g. $.result.structuredContent.ssn, $..password, $.result.content[*].text)`,
    );
  };
  if (!path.startsWith('$')) fail('must start with $');
  const steps: Step[] = [];
  let i = 1;
  while (i < path.length) {
    if (path.startsWith('..', i)) {
      steps.push({ descend: true });
      i += 2;
      const m = /^(\*|[A-Za-z_$][A-Za-z0-9_$-]*)/.exec(path.slice(i));
      if (m === null) fail('needs a key after ..');
      steps.push(m![1] === '*' ? { any: true } : { key: m![1]! });
      i += m![1]!.length;
    } else if (path[i] === '.') {
      const m = /^(\*|[A-Za-z_$][A-Za-z0-9_$-]*)/.exec(path.slice(i + 1));
      if (m === null) fail('has a . not followed by a key');
      steps.push(m![1] === '*' ? { any: true } : { key: m![1]! });
      i += 1 + m![1]!.length;
    } else if (path[i] === '[') {
      const m = /^\[(?:(\d+)|\*|'([^']*)'|"([^"]*)")\]/.exec(path.slice(i));
      if (m === null) fail("has a [ that is not [n], [*] or ['key']");
      steps.push(m![1] !== undefined ? { index: Number(m![1]) } : m![2] !== undefined ? { key: m![2] } : m![3] !== undefined ? { key: m![3] } : { any: true });
      i += m![0].length;
    } else {
      fail(`has an unexpected ${JSON.stringify(path[i])}`);
    }
  }
  return steps;
}

function match(steps: readonly Step[], s: number, at: ReadonlyArray<string | number>, a: number): boolean {
  if (s === steps.length) return a === at.length;
  const step = steps[s]!;
  if ('descend' in step) {
    for (let skip = a; skip <= at.length; skip++) if (match(steps, s + 1, at, skip)) return true;
    return false;
  }
  if (a >= at.length) return false;
  const here = at[a]!;
  const ok = 'any' in step ? true : 'key' in step ? here === step.key : here === step.index;
  return ok && match(steps, s + 1, at, a + 1);
}
