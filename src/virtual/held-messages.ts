import type { JsonRpcMessage } from '../protocol/jsonrpc.js';

/**
 * Backpressure on one member: while the virtual session's client does not keep up, what the member sends for it
 * waits here, in order.
 */
export class HeldMessages {
  #holding = false;
  readonly #held: { message: JsonRpcMessage; text: string }[] = [];
  #bytes = 0;

  get holding(): boolean {
    return this.#holding;
  }

  /** What waits, in bytes of text: the member session pauses its server past its limit. */
  get bytes(): number {
    return this.#bytes;
  }

  hold(): void {
    this.#holding = true;
  }

  push(message: JsonRpcMessage, text: string): void {
    this.#held.push({ message, text });
    this.#bytes += text.length;
  }

  /** The client caught up: what waited goes on to `deliver`, in order, until it is held again. */
  release(deliver: (message: JsonRpcMessage, text: string) => void): void {
    this.#holding = false;
    while (!this.#holding && this.#held.length > 0) {
      const next = this.#held.shift()!;
      this.#bytes -= next.text.length;
      deliver(next.message, next.text);
    }
  }

  /** The member is gone: its answers are owed as errors elsewhere, its notifications are moot. */
  drop(): void {
    this.#held.length = 0;
    this.#bytes = 0;
  }
}
