import type { Masker } from './engine.js';

/**
 * A cut-off fragment of a server message (its process died mid-write), masked for the recording. It cannot be
 * masked as a message (it is not JSON), so it is masked as text; and a value cut in half by the break can escape
 * every detector (half a card number, the first part of a key), so the string it ends in, if any, is withheld.
 */
export function maskFragment(masker: Masker, text: string): string {
  const open = unfinishedStringStart(text);
  const kept = open === undefined ? text : text.slice(0, open + 1);
  const masked = masker.maskString(kept)?.text ?? kept;
  return open === undefined ? masked : `${masked}[withheld: the value the message broke off in, ${Buffer.byteLength(text.slice(open + 1))} bytes]`;
}

/** Where the JSON string that `text` ends inside opens (the index of its quote), or undefined when it ends outside one. */
function unfinishedStringStart(text: string): number | undefined {
  let open: number | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (open !== undefined) {
      if (c === 0x5c) i++;
      else if (c === 0x22) open = undefined;
    } else if (c === 0x22) {
      open = i;
    }
  }
  return open;
}
