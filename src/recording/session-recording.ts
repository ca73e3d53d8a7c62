import type { Direction } from '../core/direction.js';
import type { VerdictEvent } from '../core/verdict-event.js';
import type { EventBoundary, NegotiatedFields } from '../store/types.js';
import { digestOf } from './chain.js';
import type { Recorder, SessionChain } from './recorder.js';
import { RecordingUnavailableError } from './recording-unavailable.js';

/**
 * One session's recording, as the session uses it: append what crossed a boundary, and (write-ahead) wait for
 * `barrier()` before forwarding the message it describes. In best-effort mode nothing waits and nothing throws.
 */
export class SessionRecording {
  #denials = 0;
  #redactions = 0;
  #closing: Promise<void> | undefined;

  /**
   * `redactToServer`, when given, masks what the client sends before it is recorded (the server still receives
   * it whole): tool arguments an operator does not want kept in the audit trail.
   */
  constructor(
    private readonly recorder: Recorder,
    private readonly chain: SessionChain,
    private readonly redactToServer?: (text: string) => { text: string; redactions: unknown[] } | undefined,
  ) {}

  /** The text to record for a message to the server, masked if so configured; the redactions are recorded as a verdict. */
  #toServerText(direction: Direction, text: string, note: boolean): string {
    if (direction !== 'toServer' || this.redactToServer === undefined) return text;
    const masked = this.redactToServer(text);
    if (masked === undefined) return text;
    if (note) this.verdict({ stage: 'mask', action: 'rewrite', direction, sensitive: true, details: { recordingOnly: true, redactions: masked.redactions } });
    return masked.text;
  }

  get writeAhead(): boolean {
    return this.recorder.mode === 'write-ahead';
  }

  /** Called once if the recording breaks (the store failed with this session's events in flight). */
  set onBroken(fn: (err: Error) => void) {
    this.chain.onBroken = fn;
  }

  /** Appends unless the session is sealing; whether the event was queued (best-effort may drop it). */
  #append(fn: () => void): boolean {
    // After the seal nothing is appended: the seal covers the recording as it ends.
    if (this.#closing !== undefined) return false;
    if (this.writeAhead) {
      fn();
      return true;
    }
    try {
      fn();
      return true;
    } catch (err) {
      if (!(err instanceof RecordingUnavailableError)) throw err;
      return false;
    }
  }

  /** A message as it crossed a boundary: `text` is the JSON exactly as received or as sent. */
  message(direction: Direction, boundary: Exclude<EventBoundary, 'relayed'>, text: string): void {
    const recorded = this.#toServerText(direction, text, boundary === 'received');
    this.#append(() => this.recorder.append(this.chain, 'message', direction, boundary, recorded));
  }

  /** A message passed straight through, no stage acting on it: one event with both texts, as received and as forwarded. */
  relayed(direction: Direction, received: string, forwarded: string): void {
    const recordedReceived = this.#toServerText(direction, received, true);
    const recordedForwarded = this.#toServerText(direction, forwarded, false);
    this.#append(() => this.recorder.append(this.chain, 'message', direction, 'relayed', recordedReceived, recordedForwarded));
  }

  verdict(event: VerdictEvent): void {
    if (event.action === 'answer') this.#denials++;
    if (event.sensitive) this.#redactions++;
    this.#append(() => this.recorder.append(this.chain, 'verdict', event.direction, null, JSON.stringify(event)));
  }

  /**
   * The server stopped in the middle of a message: what had arrived of it (or only its digest, `withheld`, when
   * masking applies: a fragment cannot be checked, a secret cut in half escapes every detector) and why it ended.
   */
  truncated(partial: string, reason: string, withheld: boolean): void {
    const bytes = Buffer.byteLength(partial);
    const details = withheld
      ? { reason, bytes, withheld: 'masking applies to this session and a fragment cannot be checked; only its digest is kept', digest: digestOf(partial) }
      : { reason, bytes, partial };
    this.#append(() => this.recorder.append(this.chain, 'truncated', 'toClient', 'received', JSON.stringify(details)));
  }

  /** A lifecycle fact (the session opened, what initialize negotiated). */
  lifecycle(kind: 'open' | 'negotiated', details: unknown): void {
    this.#append(() => this.recorder.append(this.chain, kind, null, null, JSON.stringify(details)));
  }

  negotiated(fields: NegotiatedFields): void {
    // The row learns what the event states, in the same batch, or not at all: verify compares the two.
    if (this.#append(() => this.recorder.append(this.chain, 'negotiated', null, null, JSON.stringify(fields)))) this.recorder.negotiated(this.chain, fields);
  }

  /** What write-ahead waits on before forwarding: undefined when everything appended is already durable. */
  barrier(): Promise<void> | undefined {
    if (!this.writeAhead) return undefined;
    const commit = this.chain.lastCommit;
    return commit === undefined || commit.done
      ? this.chain.broken
        ? Promise.reject(new RecordingUnavailableError('the recording failed'))
        : undefined
      : commit.promise;
  }

  /** The session ends without a seal (its recording failed): the recorder seals it as cut off once the store is back. */
  abandon(reason: string): void {
    this.#closing ??= Promise.resolve();
    this.recorder.abandon(this.chain, reason);
  }

  /** Appends the close event and the seal; resolves when they are durable. */
  close(reason: string, status: 'closed' | 'cut-off' = 'closed'): Promise<void> {
    this.#closing ??= this.recorder.seal(this.chain, status, reason, { denials: this.#denials, redactions: this.#redactions });
    return this.#closing;
  }
}
