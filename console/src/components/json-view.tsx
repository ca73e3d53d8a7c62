import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';

/**
 * JSON pretty-printed and collapsible: objects and arrays are <details> (keyboard-operable natively), open to
 * `openDepth`, and wherever they are small or hold a redaction, so a replay shows where masking happened without a
 * click. Strings the gateway or the agent redacted are marked. A closed node renders nothing inside it until opened,
 * and a long string shows its start until asked for all of it, so a 5 MB message does not flood the page.
 */

const redactedMark = /\[REDACTED:[^\]]+\]|\[secret [^\]]+\]/;
const longString = 2000;

/** How big a value is when printed (roughly), and whether it holds a redaction: once per object. */
const weights = new WeakMap<object, { chars: number; marked: boolean }>();
function weigh(value: unknown): { chars: number; marked: boolean } {
  if (typeof value === 'string') return { chars: value.length + 2, marked: redactedMark.test(value) };
  if (value === null || typeof value !== 'object') return { chars: String(value).length, marked: false };
  const known = weights.get(value);
  if (known !== undefined) return known;
  let chars = 2;
  let marked = false;
  for (const [k, v] of Object.entries(value)) {
    const w = weigh(v);
    chars += k.length + 4 + w.chars;
    marked ||= w.marked;
  }
  const w = { chars, marked };
  weights.set(value, w);
  return w;
}

function Str({ value }: { value: string }) {
  const [all, setAll] = useState(false);
  const marked = redactedMark.test(value);
  if (!marked && value.length > longString && !all) {
    return (
      <span class="j-str">
        {JSON.stringify(value.slice(0, longString))}…{' '}
        <button type="button" class="link" onClick={() => setAll(true)}>
          show all {value.length.toLocaleString()} characters
        </button>
      </span>
    );
  }
  if (!marked) return <span class="j-str">{JSON.stringify(value)}</span>;
  const parts = JSON.stringify(value).split(/(\[REDACTED:[^\]]+\]|\[secret [^\]]+\])/);
  return (
    <span class="j-str">
      {parts.map((p, i) =>
        i % 2 === 1 ? (
          <mark class="redacted" title="redacted by the gateway">
            {p}
          </mark>
        ) : (
          p
        ),
      )}
    </span>
  );
}

function Node({ value, depth, openDepth, label }: { value: unknown; depth: number; openDepth: number; label?: ComponentChildren }) {
  const key = label === undefined ? null : <span class="j-key">{label}: </span>;
  if (value === null || typeof value !== 'object') {
    return (
      <div class="j-line">
        {key}
        {typeof value === 'string' ? <Str value={value} /> : <span class={`j-${value === null ? 'null' : typeof value}`}>{JSON.stringify(value)}</span>}
      </div>
    );
  }
  const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v] as const) : Object.entries(value as Record<string, unknown>);
  const [open, close] = Array.isArray(value) ? ['[', ']'] : ['{', '}'];
  if (entries.length === 0) {
    return (
      <div class="j-line">
        {key}
        {open}
        {close}
      </div>
    );
  }
  return <Branch value={value} entries={entries} brackets={[open, close]} depth={depth} openDepth={openDepth} label={key} />;
}

function Branch({
  value,
  entries,
  brackets,
  depth,
  openDepth,
  label,
}: {
  value: object;
  entries: ReadonlyArray<readonly [string, unknown]>;
  brackets: [string, string];
  depth: number;
  openDepth: number;
  label: ComponentChildren;
}) {
  const [shown, setShown] = useState(() => {
    const w = weigh(value);
    return depth < openDepth || w.marked || w.chars < 300;
  });
  return (
    <details class="j-node" open={shown} onToggle={(e) => setShown((e.currentTarget as HTMLDetailsElement).open)}>
      <summary>
        {label}
        {brackets[0]}
        <span class="j-count">
          {' '}
          {entries.length} {Array.isArray(value) ? 'items' : 'keys'}{' '}
        </span>
      </summary>
      {shown && (
        <>
          <div class="j-children">
            {entries.map(([k, v]) => (
              <Node key={k} value={v} depth={depth + 1} openDepth={openDepth} label={Array.isArray(value) ? undefined : JSON.stringify(k)} />
            ))}
          </div>
          <div class="j-line">{brackets[1]}</div>
        </>
      )}
    </details>
  );
}

export function JsonView({ value, openDepth = 2 }: { value: unknown; openDepth?: number }) {
  return (
    <div class="json" role="group" aria-label="JSON">
      <Node value={value} depth={0} openDepth={openDepth} />
    </div>
  );
}

/** Parses JSON text for display; the text itself when it is not JSON. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
