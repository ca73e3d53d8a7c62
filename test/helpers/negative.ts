/**
 * Negative test data that is certainly wrong, never wrong by chance. Changing a secret's last character is not:
 * the last character of base64 carries fewer bits than it can spell (a 32-byte key's last character is one of 16),
 * so a fixed replacement is the right key now and then, and a decoder may ignore the difference altogether.
 */

/** `secret` with its first character (six whole bits in base64, hex or text alike) replaced by another. */
export function alteredSecret(secret: string): string {
  if (secret.length === 0) throw new Error('alteredSecret needs a non-empty secret');
  return `${secret.startsWith('A') ? 'B' : 'A'}${secret.slice(1)}`;
}
