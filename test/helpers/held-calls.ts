import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { callApi } from './api.js';
import { waitFor } from './wait.js';

/** A review as /api/reviews lists it, as far as a test reads it. */
export interface ListedReview {
  id: string;
  status: string;
  params: { arguments: Record<string, unknown> };
}

/** The guardrail rule that holds a call of `echo` whose text starts with "hold" until one of the `leads` approves it. */
export const holdRule = { name: 'held', when: 'tool.name == "echo" && arguments.text.startsWith("hold")', action: 'review', approvers: ['leads'] };

/** Where a held call's review is looked for: a gateway's API, as someone who may decide it. */
export interface ReviewDesk {
  url: string;
  token: string;
}

/**
 * Calls `echo` with `text` (one the hold rule holds) as the holder of `token`, over Streamable HTTP to `endpoint`,
 * and waits until the call's review is pending at `desk`. The client goes into `clients` for the suite to close; the
 * call settles once the review is decided (or the client gives up, after a minute).
 */
export async function holdCall(
  endpoint: URL,
  token: string,
  text: string,
  desk: ReviewDesk,
  clients: Client[],
): Promise<{ call: Promise<CallToolResult>; review: ListedReview }> {
  const client = new Client({ name: 'held-call', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(endpoint, { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
  clients.push(client);
  const call = client.callTool({ name: 'echo', arguments: { text } }, undefined, { timeout: 60_000 }) as Promise<CallToolResult>;
  call.catch(() => {});
  let review: ListedReview | undefined;
  await waitFor(async () => {
    const r = await callApi<{ reviews?: ListedReview[] }>(desk.url, desk.token, 'GET', '/api/reviews?status=pending');
    review = r.body.reviews?.find((v) => v.params.arguments.text === text);
    return review !== undefined;
  }, `the held call '${text}' to wait for a review`);
  return { call, review: review! };
}
