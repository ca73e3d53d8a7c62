import { readFileSync } from 'node:fs';
import { inspect } from 'node:util';

/**
 * A config string that may hold secret references: `${env:NAME}` or `${file:PATH}`, alone or inside
 * text (`Bearer ${env:TOKEN}`). The resolved value lives in a private field: it never appears in
 * JSON.stringify, util.inspect, a template literal or a log line. Only `reveal()` returns it, and only the
 * upstream code that hands it to a process or a header calls that.
 */
export class SecretString {
  readonly #value: string;
  /** The text as written in the config, with references unresolved: safe to show. */
  readonly template: string;
  /** True when the text contains at least one reference. */
  readonly hasReferences: boolean;
  readonly #referenced: readonly string[];

  constructor(template: string, value: string, hasReferences: boolean, referenced: readonly string[] = []) {
    this.template = template;
    this.#value = value;
    this.hasReferences = hasReferences;
    this.#referenced = referenced;
  }

  /** The values its references resolved to, each on its own (the agent scrubs every one from what leaves it). */
  referencedValues(): readonly string[] {
    return this.#referenced;
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return this.template;
  }

  toJSON(): string {
    return this.template;
  }

  [inspect.custom](): string {
    return `SecretString(${JSON.stringify(this.template)})`;
  }
}

const referencePattern = /\$\{(env|file):([^}]*)\}/g;

export class SecretReferenceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SecretReferenceError';
  }
}

/** Where a reference's value comes from; injectable so tests need not touch the real environment. */
export interface SecretSources {
  env: Record<string, string | undefined>;
  readFile: (path: string) => string;
}

export const processSecretSources: SecretSources = {
  env: process.env,
  readFile: (path) => readFileSync(path, 'utf8'),
};

/** Resolves every reference in `template`; the error names the reference, never a value. */
export function resolveSecretString(template: string, sources: SecretSources = processSecretSources): SecretString {
  let hasReferences = false;
  const referenced: string[] = [];
  const value = template.replace(referencePattern, (_match, kind: string, name: string) => {
    hasReferences = true;
    if (name.length === 0) throw new SecretReferenceError(`the reference \${${kind}:} names nothing`);
    if (kind === 'env') {
      const v = sources.env[name];
      if (v === undefined) throw new SecretReferenceError(`environment variable ${name} is not set (referenced as \${env:${name}})`);
      referenced.push(v);
      return v;
    }
    try {
      // A file secret conventionally ends with one newline (echo > file); it is not part of the value.
      const v = sources.readFile(name).replace(/\r?\n$/, '');
      referenced.push(v);
      return v;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
      throw new SecretReferenceError(`file ${name} cannot be read (${code}) (referenced as \${file:${name}})`);
    }
  });
  if (/\$\{[a-z]+:/.test(template.replace(referencePattern, ''))) {
    throw new SecretReferenceError('unknown reference kind; use ${env:NAME} or ${file:PATH}');
  }
  return new SecretString(template, value, hasReferences, referenced);
}
