/**
 * Splits a byte stream into newline-delimited lines, bounding each line (one stdio message) rather than
 * each read: a server that writes many small messages at once is fine, one message over the limit is not.
 */
export class LineReader {
  #parts: Buffer[] = [];
  #partBytes = 0;
  #overflowed = false;

  constructor(
    private readonly maxLineBytes: number,
    private readonly onLine: (line: string) => void,
    /** Called once when a line grows past the limit; nothing more is read after it. */
    private readonly onOverflow: (limit: number) => void,
  ) {}

  push(chunk: Buffer): void {
    if (this.#overflowed) return;
    let start = 0;
    for (let nl = chunk.indexOf(10, start); nl !== -1; nl = chunk.indexOf(10, start)) {
      const piece = chunk.subarray(start, nl);
      start = nl + 1;
      if (this.#partBytes + piece.length > this.maxLineBytes) return this.#overflow();
      let line: string;
      if (this.#parts.length === 0) {
        line = piece.toString('utf8');
      } else {
        this.#parts.push(piece);
        line = Buffer.concat(this.#parts, this.#partBytes + piece.length).toString('utf8');
        this.#parts = [];
        this.#partBytes = 0;
      }
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line.length > 0) this.onLine(line);
      if (this.#overflowed) return;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      if (this.#partBytes + rest.length > this.maxLineBytes) return this.#overflow();
      // Copy: the stream may reuse the chunk's memory.
      this.#parts.push(Buffer.from(rest));
      this.#partBytes += rest.length;
    }
  }

  /** What arrived after the last complete line (a message cut off mid-way), as text; empty when nothing did. */
  rest(): string {
    if (this.#overflowed || this.#parts.length === 0) return '';
    const text = Buffer.concat(this.#parts, this.#partBytes).toString('utf8');
    this.#parts = [];
    this.#partBytes = 0;
    return text;
  }

  #overflow(): void {
    this.#overflowed = true;
    this.#parts = [];
    this.#partBytes = 0;
    this.onOverflow(this.maxLineBytes);
  }
}
