import type { ServerResponse } from 'node:http';

/** Headers that keep an SSE stream flowing through proxies that would otherwise buffer or compress it. */
export const sseHeaders: Readonly<Record<string, string>> = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache, no-transform',
  connection: 'keep-alive',
  'x-accel-buffering': 'no',
};

/** One SSE frame. Data with line breaks becomes several `data:` lines, which the client joins back with \n. */
export function sseFrame(data: string, id?: string, event = 'message'): string {
  const lines = data.includes('\n') || data.includes('\r') ? data.split(/\r\n|\r|\n/).join('\ndata: ') : data;
  return `${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${lines}\n\n`;
}

/**
 * Writes SSE comments on every open stream at an interval, so intermediaries and clients see traffic on
 * an otherwise quiet stream. One timer for all streams, however many there are.
 */
export class KeepAlive {
  readonly #streams = new Set<ServerResponse>();
  #timer: NodeJS.Timeout | undefined;

  constructor(private readonly intervalMs: number) {}

  add(res: ServerResponse): void {
    if (this.intervalMs <= 0) return;
    this.#streams.add(res);
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.#tick(), this.intervalMs);
      this.#timer.unref();
    }
  }

  delete(res: ServerResponse): void {
    this.#streams.delete(res);
    if (this.#streams.size === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  #tick(): void {
    for (const res of this.#streams) {
      if (res.writableEnded || res.destroyed) this.delete(res);
      else res.write(': keep-alive\n\n');
    }
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#streams.clear();
  }
}
