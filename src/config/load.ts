import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { configSchema, type GatewayConfig } from './schema.js';
import { processSecretSources, type SecretSources } from '../core/secrets.js';

/** A config that cannot be used; `problems` each name a key path, what was found and what is expected. */
export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`invalid config ${source}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Paths below these keys may hold credentials: a found value is described, never shown. */
const sensitiveKeys = new Set(['env', 'headers', 'args', 'url', 'store', 'signingKey', 'token', 'trustedKeys', 'encryption']);

function describeFound(input: unknown, path: PropertyKey[]): string {
  if (input === undefined) return 'nothing';
  if (input === null) return 'null';
  if (Array.isArray(input)) return 'a list';
  const sensitive = path.some((p) => sensitiveKeys.has(String(p)));
  switch (typeof input) {
    case 'string':
      return sensitive || input.length > 60 ? 'a string' : `the string ${JSON.stringify(input)}`;
    case 'number':
    case 'boolean':
      return sensitive ? `a ${typeof input}` : `${typeof input} ${String(input)}`;
    case 'object':
      return 'a map';
    default:
      return typeof input;
  }
}

/** Zod's type names in the words of a YAML file. */
function expectedType(expected: string): string {
  switch (expected) {
    case 'object':
    case 'record':
      return 'a map';
    case 'array':
      return 'a list';
    case 'int':
      return 'an integer';
    default:
      return `a ${expected}`;
  }
}

function formatPath(path: PropertyKey[]): string {
  return path.length === 0 ? '(top level)' : path.map(String).join('.');
}

type AnySchema = { _zod: { def: Record<string, unknown> & { type: string } } };

/** Follows a path through the schema to the object found there, to list the keys it accepts. */
function knownKeysAt(schema: AnySchema, path: PropertyKey[]): string[] | undefined {
  let s: AnySchema | undefined = schema;
  const unwrap = (x: AnySchema): AnySchema => {
    let cur = x;
    for (let i = 0; i < 10; i++) {
      const def = cur._zod.def;
      if (def.type === 'default' || def.type === 'optional' || def.type === 'prefault') cur = def.innerType as AnySchema;
      else if (def.type === 'pipe') cur = def.in as AnySchema;
      else break;
    }
    return cur;
  };
  for (const key of path) {
    s = unwrap(s);
    const def: AnySchema['_zod']['def'] = s._zod.def;
    if (def.type === 'object') s = (def.shape as Record<string, AnySchema>)[String(key)];
    else if (def.type === 'record') s = def.valueType as AnySchema;
    else if (def.type === 'array') s = def.element as AnySchema;
    else return undefined;
    if (!s) return undefined;
  }
  s = unwrap(s);
  return s._zod.def.type === 'object' ? Object.keys(s._zod.def.shape as object) : undefined;
}

function formatIssue(issue: z.core.$ZodIssue, schema: AnySchema): string[] {
  const at = formatPath(issue.path);
  switch (issue.code) {
    case 'unrecognized_keys': {
      const known = knownKeysAt(schema, issue.path);
      return issue.keys.map((k) => `${formatPath([...issue.path, k])}: unknown key${known ? `; expected one of: ${known.join(', ')}` : ''}`);
    }
    case 'invalid_type':
      return [`${at}: expected ${expectedType(issue.expected)}, found ${describeFound(issue.input, issue.path)}`];
    case 'too_small':
    case 'too_big': {
      const bound = issue.code === 'too_small' ? (issue.inclusive ? '≥' : '>') : issue.inclusive ? '≤' : '<';
      const limit = issue.code === 'too_small' ? issue.minimum : issue.maximum;
      if (issue.origin !== 'number') return [`${at}: ${issue.message}, found ${describeFound(issue.input, issue.path)}`];
      return [`${at}: expected a number ${bound} ${String(limit)}, found ${describeFound(issue.input, issue.path)}`];
    }
    case 'invalid_key': {
      const why = issue.issues[0]?.message ?? issue.message;
      return [`${at}: ${why}, found ${describeFound(issue.input, issue.path)}`];
    }
    case 'invalid_value':
      return [`${at}: expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, found ${describeFound(issue.input, issue.path)}`];
    case 'invalid_union':
      return [`${at}: ${issue.message}, found ${describeFound(issue.input, issue.path)}`];
    default:
      return [`${at}: ${issue.message}`];
  }
}

/** Parses YAML text against a schema; throws ConfigError listing every problem (key path, what was found, what is expected). */
export function parseYaml<S extends z.ZodType>(schema: S, text: string, source: string): z.output<S> {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      source,
      doc.errors.map((e) => `${e.linePos ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}` : 'YAML'}: ${e.message.split('\n')[0]}`),
    );
  }
  const raw: unknown = doc.toJS() ?? {};
  const result = schema.safeParse(raw, { reportInput: true });
  if (!result.success) {
    throw new ConfigError(
      source,
      result.error.issues.flatMap((i) => formatIssue(i, schema as unknown as AnySchema)),
    );
  }
  return result.data;
}

/** Parses and validates config text; throws ConfigError listing every problem. */
export function parseConfig(text: string, source: string, sources: SecretSources = processSecretSources): GatewayConfig {
  return parseYaml(configSchema(sources), text, source);
}

/** Reads a file for a command; ConfigError when it cannot be read. */
export function readConfigText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(path, [`the file cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`]);
  }
}

/** Reads a config file. Relative paths inside it (stdio cwd, dataDir, sqlite store) stay relative to the process cwd. */
export function loadConfigFile(path: string, sources?: SecretSources): GatewayConfig {
  return parseConfig(readConfigText(path), path, sources);
}

/** Where the demo server's entry point is, so the quick start needs no path from the user. */
export function demoServerEntry(): string {
  const require = createRequire(import.meta.url);
  return resolve(dirname(require.resolve('@modelcontextprotocol/server-everything/package.json')), 'dist/index.js');
}

/**
 * Where the quick start's second demo server, @modelcontextprotocol/server-filesystem, has its entry point; undefined
 * when it cannot be found (a broken install): the quick start then serves `everything` alone, and says so.
 */
export function demoFilesServerEntry(): string | undefined {
  const require = createRequire(import.meta.url);
  try {
    return resolve(dirname(require.resolve('@modelcontextprotocol/server-filesystem/package.json')), 'dist/index.js');
  } catch {
    return undefined;
  }
}

/** The folder the quick start's `files` connection serves (read only): inside the embedded defaults' dataDir, ./data. */
export function demoFilesFolder(): string {
  return resolve('data', 'demo-files');
}

/**
 * The embedded defaults `npm start` runs with: the connection `everything` (the demo server over stdio), `files`
 * (server-filesystem over demoFilesFolder(), reading only) and the virtual server `toolbox` serving both at one URL.
 */
export function defaultConfigText(): string {
  const filesEntry = demoFilesServerEntry();
  return [
    'listen: 127.0.0.1:8080',
    'store: sqlite:./data/portcullis.db',
    '# No OIDC issuer here, so the embedded dev identity signs tokens: portcullis login --dev alice',
    'identity:',
    '  dev:',
    '    users:',
    '      alice: [engineers, approvers, admins, auditors]',
    '      bob: [engineers]',
    'roles:',
    '  admins: [admins]                  # may approve changed tool definitions: portcullis pins approve',
    '  auditors: [auditors]              # see every session in the web console (others see their own)',
    'rules:',
    "  # A tool that prints the server's environment waits for an approver (try it as bob, approve it as alice);",
    "  # through the virtual server too (everything__get-env): the rule sees the server's own tool name",
    '  - name: env-needs-review',
    '    when: tool.name == "get-env"',
    '    action: review',
    '    approvers: [approvers]',
    'connections:',
    '  everything:',
    '    description: The MCP reference server that exercises every protocol feature',
    '    stdio:',
    `      command: ${JSON.stringify(process.execPath)}`,
    `      args: [${JSON.stringify(demoServerEntry())}, stdio]`,
    '    access:',
    '      groups: [engineers]',
    ...(filesEntry === undefined
      ? []
      : [
          '  files:',
          '    description: The MCP filesystem server over the demo folder data/demo-files, reading only',
          '    stdio:',
          `      command: ${JSON.stringify(process.execPath)}`,
          `      args: [${JSON.stringify(filesEntry)}, ${JSON.stringify(demoFilesFolder())}]`,
          '    access:',
          '      groups: [engineers]',
          '    tools:',
          '      allow: ["read_*", "list_*", "search_files", "get_file_info", "directory_tree"]',
        ]),
    '# One endpoint, /mcp/toolbox, serving the tools, prompts and resources of both, each name prefixed by its',
    "# connection (everything__echo, files__read_text_file); each call keeps its own connection's policy (docs/virtual-servers.md)",
    'virtualServers:',
    '  toolbox:',
    `    description: ${filesEntry === undefined ? 'everything' : 'everything and files'} behind one endpoint`,
    '    access:',
    '      groups: [engineers]',
    '    members:',
    '      - connection: everything',
    ...(filesEntry === undefined ? [] : ['      - connection: files']),
    '# One process on this machine, no load balancer to tell: Ctrl-C drains without first serving on',
    'shutdown:',
    '  drainDelay: 0',
    '',
  ].join('\n');
}
