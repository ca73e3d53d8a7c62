/** Shapes of JSON the masking walk meets: objects whose keys were masked, MCP's binary fields, JSON inside a string. */

/** An object with some keys replaced, in their places; keys that would come out the same are told apart (` #2`), so none is lost. */
export function withKeysRenamed(object: Record<string, unknown>, renamed: ReadonlyMap<string, string>): Record<string, unknown> {
  const taken = new Set(Object.keys(object).filter((k) => !renamed.has(k)));
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(object)) {
    let name = key;
    const masked = renamed.get(key);
    if (masked !== undefined) {
      name = masked;
      for (let n = 2; taken.has(name); n++) name = `${masked} #${n}`;
      taken.add(name);
    }
    // defineProperty: a key named __proto__ stays a key, as JSON.parse made it.
    Object.defineProperty(out, name, { value: object[key], enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** A field MCP defines as base64: a resource's `blob` (next to its `uri`), an image's or audio clip's `data`. */
export function isBinaryField(object: Record<string, unknown>, key: string): boolean {
  return (key === 'blob' && typeof object.uri === 'string') || (key === 'data' && (object.type === 'image' || object.type === 'audio'));
}

/** JSON carried in a string (a tool's text content that is a JSON document), parsed, with the indentation it used. */
export function embeddedJson(text: string): { value: unknown; indent: number | string | undefined } | undefined {
  if (text.length < 2) return undefined;
  let i = 0;
  while (i < text.length && (text[i] === ' ' || text[i] === '\n' || text[i] === '\r' || text[i] === '\t')) i++;
  const first = text[i];
  if (first !== '{' && first !== '[') return undefined;
  let j = text.length - 1;
  while (j > i && (text[j] === ' ' || text[j] === '\n' || text[j] === '\r' || text[j] === '\t')) j--;
  if (text[j] !== (first === '{' ? '}' : ']')) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const m = /\n( +|\t)\S/.exec(text);
  return { value, indent: m === null ? undefined : m[1] === '\t' ? '\t' : m[1]!.length };
}
