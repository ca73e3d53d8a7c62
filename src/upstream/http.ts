import { SSEClientTransport, SseError } from '@modelcontextprotocol/sdk/client/sse.js';
import type { UpstreamConfig } from './config.js';
import type { CredentialScrubber } from '../scrub/credential-scrubber.js';
import { SdkTransportUpstream } from './sdk-transport.js';
import { UpstreamError } from './upstream.js';

type HttpConfig = Pick<Extract<UpstreamConfig, { kind: 'http' | 'sse' }>, 'kind' | 'url' | 'headers'>;

/** Only the headers the connection configures: nothing from the client (its Authorization above all) is forwarded. */
function configuredHeaders(config: HttpConfig): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(config.headers)) headers[k] = v.reveal();
  return headers;
}

/**
 * Many servers answer 400 rather than 404 when they no longer know a session; both mean the client must
 * start again. A 400 that does not mention the session is an ordinary bad request.
 */
function isLostSession(status: number | undefined, message: string): boolean {
  if (status === 404) return true;
  return status === 400 && /session/i.test(message);
}

function describeHttpError(scrubber: CredentialScrubber) {
  return (err: unknown): UpstreamError => {
    const status = err instanceof SseError ? err.code : undefined;
    const raw = err instanceof Error ? err.message : String(err);
    // The SDK puts the server's answer into the message, and fetch the URL (which may carry a credential).
    const message = scrubber.scrub(raw);
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? (cause?.message === undefined ? undefined : scrubber.scrub(cause.message));
    return new UpstreamError(
      `the upstream server ${status ? `answered HTTP ${status}` : `cannot be reached${why ? ` (${why})` : ''}`}: ${message}`,
      isLostSession(status, raw),
      status,
    );
  };
}

/** Legacy HTTP+SSE upstream (protocol 2024-11-05). The SDK refuses an endpoint event on another origin. */
export class SseUpstream extends SdkTransportUpstream {
  constructor(config: HttpConfig, scrubber: CredentialScrubber) {
    const headers = configuredHeaders(config);
    const transport = new SSEClientTransport(new URL(config.url.reveal()), { requestInit: { headers } });
    super(transport, describeHttpError(scrubber), scrubber);
  }

  override async start(): Promise<void> {
    try {
      await this.transport.start();
    } catch (err) {
      throw new UpstreamError(`the upstream SSE server cannot be reached: ${this.scrubber.scrub((err as Error).message)}`, true);
    }
  }
}
