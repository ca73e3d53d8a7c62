/**
 * How deeply a JSON text nests, found by scanning its characters, never by recursion: JSON.parse takes any depth,
 * but what the gateway does next with the value (JSON.stringify, masking, policy) recurses, and a value nested
 * ten thousand levels deep overflows the stack there. Bounding the text before anything walks it keeps that out.
 */

/** Deeper than any real MCP message, well inside what every recursive walk of a value in the gateway survives. */
export const maxJsonDepth = 512;

/** Whether `text` (any text; meant for JSON) opens more than `max` arrays and objects inside each other. */
export function nestsDeeperThan(text: string, max: number = maxJsonDepth): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return false;
}
