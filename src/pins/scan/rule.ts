/**
 * The poisoning scan's rules: each reads the texts of one tool definition (its name, description, input schema
 * and annotations) and says what looks like an attack on the model that reads them, as short reasons an admin
 * reads before approving. Rules are local and deterministic: no remote service, no model.
 */

/** One string of a definition and where it is: `description`, `inputSchema.properties.path.description`, … */
export interface ScannedText {
  field: string;
  text: string;
  /**
   * `prose`: text the model reads as language (descriptions, titles, enum values, defaults); `name`: an
   * identifier (the tool's name, a property's name), read only for characters that hide or reorder text.
   */
  kind: 'prose' | 'name';
}

/** What the gateway knows besides the definition: its connection and the tools the other connections offer. */
export interface ScanContext {
  connection: string;
  /** The names of the tools this connection offers (a description may name its own tools). */
  ownTools: ReadonlySet<string>;
  /** Tool name → the other connections that offer it (from their pins). */
  otherTools: ReadonlyMap<string, readonly string[]>;
  /** The other connections' names. */
  otherConnections: readonly string[];
}

/** What a rule found: the message says what and where in the text; `connections` names other connections involved. */
export interface ScanHit {
  message: string;
  connections?: string[];
}

export interface ScanRule {
  /** Stable name, shown in reasons and the docs (`bidi-control`, `hide-from-user`, …). */
  readonly name: string;
  /** The family module it comes from (invisible, instructions, exfiltration, cross-references). */
  readonly family: string;
  /** Which texts it reads. */
  readonly reads: 'prose' | 'all';
  /**
   * What it finds in one text, at most one hit per text. `plain` is the text as a model would read it: NFKC,
   * invisible characters removed, whitespace collapsed, so `ig\u200bnore` cannot slip past a phrase.
   */
  check(text: ScannedText, plain: string, context: ScanContext): ScanHit | undefined;
}

/** At most this many characters of the text around a hit are quoted in a reason. */
const excerptChars = 80;

/** A character shown as its code point: what is invisible or reorders text cannot hide in a reason. */
export const codePoint = (c: string) => `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;

/** Text quoted in a reason: format and control characters escaped, at most `excerptChars` around `at`. */
export function excerpt(text: string, at = 0, length = 0): string {
  const start = Math.max(0, at - 20);
  const end = Math.min(text.length, Math.max(at + length, start + excerptChars));
  const cut = text.slice(start, Math.min(end, start + excerptChars));
  // eslint-disable-next-line no-control-regex
  const shown = cut.replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu, (c) => (c === '\n' || c === '\t' ? ' ' : `<${codePoint(c)}>`));
  return `"${start > 0 ? '…' : ''}${shown}${start + excerptChars < text.length ? '…' : ''}"`;
}

/** A phrase rule: a pattern (case-insensitive, over the plain text) and what a match means. */
export function phraseRule(name: string, family: string, what: string, pattern: RegExp): ScanRule {
  if (!pattern.ignoreCase || pattern.global || pattern.sticky) throw new Error(`scan rule ${name}: its pattern ignores case and is neither global nor sticky`);
  return {
    name,
    family,
    reads: 'prose',
    check(_text, plain) {
      const m = pattern.exec(plain);
      return m === null ? undefined : { message: `${what}: ${excerpt(plain, m.index, m[0].length)}` };
    },
  };
}
