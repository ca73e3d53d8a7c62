import type { JsonRpcMessage, RequestId } from '../../src/protocol/jsonrpc.js';
import type { ClientSink } from '../../src/exchange/sink.js';
import type { Upstream } from '../../src/upstream/upstream.js';

/** What an edge was handed: each message with the request it belongs to and the exact text. */
export class CollectingSink implements ClientSink {
  readonly sent: Array<{ message: JsonRpcMessage; related: RequestId | undefined; text: string }> = [];
  readonly abandoned: RequestId[] = [];
  connected = true;
  send(message: JsonRpcMessage, related: RequestId | undefined, text: string): void {
    this.sent.push({ message, related, text });
  }
  abandon(clientId: RequestId): void {
    this.abandoned.push(clientId);
  }
  close(): void {}
}

/** An upstream that keeps what it was sent, and fails a send when told to. */
export class CollectingUpstream implements Upstream {
  readonly sent: string[] = [];
  fail: Error | undefined;
  async start(): Promise<void> {}
  async send(_message: JsonRpcMessage, text: string): Promise<void> {
    if (this.fail !== undefined) throw this.fail;
    this.sent.push(text);
  }
  setProtocolVersion(): void {}
  async close(): Promise<void> {}
}
