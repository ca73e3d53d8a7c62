import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { type JsonRpcMessage, toMessage } from '../protocol/jsonrpc.js';
import type { CredentialScrubber } from '../scrub/credential-scrubber.js';
import type { Upstream, UpstreamError } from './upstream.js';

/** Adapts an SDK client transport to the Upstream interface; each transport module supplies its own. */
export class SdkTransportUpstream implements Upstream {
  onmessage?: (message: JsonRpcMessage, text: string) => void;
  onclose?: (reason: string) => void;
  onerror?: (error: Error) => void;
  #closed = false;
  #closeReason = 'upstream closed the connection';

  constructor(
    protected readonly transport: Transport,
    /** Describes a send failure; decides whether it means the upstream session is gone. */
    private readonly describeSendError: (err: unknown) => UpstreamError,
    /** Takes the credentials the gateway injected out of everything the server sends, where it enters. */
    protected readonly scrubber: CredentialScrubber,
    private readonly terminate: () => Promise<void> = async () => {},
  ) {
    transport.onmessage = (m) => {
      // The SDK hands over parsed messages only; their text is re-serialized, and parsed again only if scrubbed.
      const text = JSON.stringify(m);
      const scrubbed = scrubber.scrubJson(text);
      this.onmessage?.(scrubbed === text ? (m as JsonRpcMessage) : toMessage(JSON.parse(scrubbed)), scrubbed);
    };
    transport.onerror = (e) => this.onerror?.(new Error(scrubber.scrub(e.message)));
    transport.onclose = () => {
      if (this.#closed) return;
      this.#closed = true;
      this.onclose?.(this.#closeReason);
    };
  }

  /** Lets a transport module explain a close (an exit code, a signal) before it happens. */
  protected setCloseReason(reason: string): void {
    this.#closeReason = reason;
  }

  async start(): Promise<void> {
    await this.transport.start();
  }

  async send(message: JsonRpcMessage, _text: string): Promise<void> {
    try {
      await this.transport.send(message as JSONRPCMessage);
    } catch (err) {
      throw this.describeSendError(err);
    }
  }

  setProtocolVersion(version: string): void {
    this.transport.setProtocolVersion?.(version);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closeReason = 'closed by the gateway';
    try {
      await this.terminate();
    } catch {
      // The server may already be gone; closing goes on regardless.
    }
    await this.transport.close();
    if (!this.#closed) {
      this.#closed = true;
      this.onclose?.(this.#closeReason);
    }
  }
}
