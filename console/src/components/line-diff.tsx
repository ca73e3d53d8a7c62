/**
 * A line diff of two texts (longest common subsequence over lines; tool definitions are short), shown as one
 * column: removed lines marked −, added lines +, with text as well as colour so it reads without colour too.
 */

type Line = { kind: 'same' | 'removed' | 'added'; text: string };

export function diffLines(before: string, after: string): Line[] {
  const a = before.split('\n');
  const b = after.split('\n');
  const n = a.length;
  const m = b.length;
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--) lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  const out: Line[] = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) {
      out.push({ kind: 'same', text: a[i]! });
      i++;
      j++;
    } else if (lcs[i + 1]![j]! >= lcs[i]![j + 1]!) out.push({ kind: 'removed', text: a[i++]! });
    else out.push({ kind: 'added', text: b[j++]! });
  }
  while (i < n) out.push({ kind: 'removed', text: a[i++]! });
  while (j < m) out.push({ kind: 'added', text: b[j++]! });
  return out;
}

/**
 * A definition as JSON with its invisible characters written out: format characters (bidirectional controls would
 * reorder the line the admin reads, tag characters hide text) as \u escapes, as JSON already writes controls.
 */
export function visibleJson(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(/\p{Cf}/gu, (c) => {
    const code = c.codePointAt(0)!;
    return code > 0xffff ? `\\u{${code.toString(16)}}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

export function LineDiff({ before, after }: { before: unknown; after: unknown }) {
  const lines = diffLines(before === null || before === undefined ? '' : visibleJson(before), visibleJson(after));
  return (
    <pre class="diff" aria-label="Definition changes: lines starting with minus were removed, plus were added">
      {lines.map((l, k) => (
        <div key={k} class={`diff-${l.kind}`}>
          {l.kind === 'removed' ? '− ' : l.kind === 'added' ? '+ ' : '  '}
          {l.text}
        </div>
      ))}
    </pre>
  );
}
