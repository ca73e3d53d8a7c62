/**
 * Text from a client or a server made safe for a terminal: control characters (an escape sequence could rewrite
 * what an approver sees) and invisible format characters (bidirectional controls reorder a line, tag characters
 * hide text) are shown as `\u001b`-style escapes; line breaks and tabs stay, and so does a joiner inside an emoji.
 */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029]|(?!\u200d)\p{Cf}/gu, (c) => {
    const code = c.codePointAt(0)!;
    return code > 0xffff ? `\\u{${code.toString(16)}}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/** Pads each column to its widest cell; the last column is left as it is. Cells are made printable. */
export function table(cells: string[][]): string {
  const rows = cells.map((r) => r.map(printable));
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')).join('\n');
}
