import { excerpt, phraseRule, type ScanContext, type ScanRule } from '../rule.js';

/**
 * A description that reaches beyond its own tool: naming a tool another connection offers (the "shadowing"
 * attack: a poisoned tool tells the model how to use a trusted server's `send_email`), a server-qualified tool
 * name, or another server, tool or connection. A tool may name its own connection's tools.
 */

/**
 * A name that reads as an identifier, not a word (`send_email`, `get-env`, `readFile`, `v2`): named bare in
 * prose it is a reference. A plain word (`echo`, `add`) counts only quoted or followed by "tool".
 */
const distinctive = (name: string) => /[_\-.:/]|\d|[a-z][A-Z]/.test(name);
/** Identifier-like tokens of a text, with where they are and how they are written around. */
const tokens = /[\p{L}\p{N}_\-.:/]+/gu;
const quoted = (plain: string, start: number, end: number) => /^[`'"“‘]$/u.test(plain[start - 1] ?? '') || /^\s+tools?\b/i.test(plain.slice(end, end + 8));

/** Another connection's name used as a server's or connection's ("the mail server", "connection named mail"), compiled once per scan context. */
const compiled = new WeakMap<ScanContext, Array<{ connection: string; pattern: RegExp }>>();
function connectionPatterns(context: ScanContext): Array<{ connection: string; pattern: RegExp }> {
  let patterns = compiled.get(context);
  if (patterns === undefined) {
    patterns = context.otherConnections
      .filter((c) => c !== context.connection)
      .map((connection) => {
        const name = connection.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');
        const pattern = new RegExp(
          String.raw`(?<![\p{L}\p{N}_-])${name}(?![\p{L}\p{N}_-])\s+(?:mcp\s+)?(?:server|connection)\b|\b(?:server|connection)\s+(?:named\s+|called\s+)?[\x60'"“]?${name}(?![\p{L}\p{N}_-])`,
          'iu',
        );
        return { connection, pattern };
      });
    compiled.set(context, patterns);
  }
  return patterns;
}

export const crossReferenceRules: readonly ScanRule[] = [
  {
    name: 'other-connection-tool',
    family: 'cross-references',
    reads: 'prose',
    check(_text, plain, context) {
      if (context.otherTools.size === 0) return undefined;
      for (const m of plain.matchAll(tokens)) {
        // Sentence punctuation is not part of a name ("call send_email."); trimmed by hand, as a `[.]+$` pattern
        // would take quadratic time on a long run of dots.
        let end = m[0].length;
        while (end > 0 && '.:/-'.includes(m[0][end - 1]!)) end--;
        const name = m[0].slice(0, end);
        const others = context.otherTools.get(name);
        if (others === undefined || context.ownTools.has(name)) continue;
        if (!distinctive(name) && !quoted(plain, m.index, m.index + name.length)) continue;
        return {
          message: `names ${JSON.stringify(name)}, a tool another connection offers: ${excerpt(plain, m.index, name.length)}`,
          connections: [...others],
        };
      }
      return undefined;
    },
  },
  phraseRule('qualified-tool-name', 'cross-references', 'names a tool by its server-qualified name', /\bmcp_{1,2}[\p{L}\p{N}-]+_{1,2}[\p{L}\p{N}_-]+/iu),
  phraseRule(
    'other-servers',
    'cross-references',
    'refers to other servers or tools',
    /\b(?:another|other|different|also[\s-]+present|(?:all|any|every)\s+other)\s+(?:mcp\s+)?(?:servers?|tools?|connections?|plugins?|extensions?)\b|\bside[\s-]+effects?\s+on\s+(?:the\s+)?(?:also[\s-]+present|other)\b/i,
  ),
  {
    name: 'other-connection-name',
    family: 'cross-references',
    reads: 'prose',
    check(_text, plain, context) {
      for (const { connection, pattern } of connectionPatterns(context)) {
        const m = pattern.exec(plain);
        if (m !== null) return { message: `refers to another connection: ${excerpt(plain, m.index, m[0].length)}`, connections: [connection] };
      }
      return undefined;
    },
  },
];
