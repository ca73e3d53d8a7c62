import type { JsonRpcRequest } from '../protocol/jsonrpc.js';
import type { CallerOnConnection } from '../core/identity.js';
import type { InputResponse, RequestFacts } from './cel.js';

const none: Readonly<Record<string, unknown>> = Object.freeze({});
const noVirtualServer: RequestFacts['virtual'] = Object.freeze({ server: '', tool: '', prompt: '' });

const objectOr = (v: unknown): Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : (none as Record<string, unknown>);
const stringOr = (v: unknown): string => (typeof v === 'string' ? v : '');

/**
 * A caller on a connection, and the virtual server the request came through when it did (a member session's
 * `SessionInfo.virtual`, src/pipeline/stage.ts; declared here by shape, as policy does not import the pipeline).
 */
export interface CallerOnRequest extends CallerOnConnection {
  readonly virtual?: { readonly server: string; exposed(kind: 'tool' | 'prompt', name: string): string };
}

/**
 * What a guardrail condition sees of one request: who sent it on which connection, and what it is about. Fields
 * a request does not have are empty (an empty tool name, no arguments), never missing, so a condition about tools
 * is simply false for a resources/read. `annotations` are the tool's, as the server last declared them.
 *
 * `virtual` is empty on a direct call too, never missing: a missing variable would make every condition that
 * names it fail, and a failing condition holds for deny and review rules, so a rule about a virtual server's
 * names would refuse or hold every direct call.
 */
export function requestFacts(
  request: JsonRpcRequest,
  session: CallerOnRequest,
  annotations: (tool: string) => Record<string, unknown> | undefined,
  inputResponses: InputResponse[] = [],
): RequestFacts {
  const params = objectOr(request.params);
  const identity = session.identity;
  const isTool = request.method === 'tools/call';
  const toolName = isTool ? stringOr(params.name) : '';
  const promptName = request.method === 'prompts/get' ? stringOr(params.name) : '';
  const through = session.virtual;
  return {
    identity: { subject: identity.subject, issuer: identity.issuer, email: identity.email ?? '', groups: identity.groups },
    connection: session.connection,
    method: request.method,
    tool: { name: toolName, annotations: (toolName === '' ? undefined : annotations(toolName)) ?? (none as Record<string, unknown>) },
    arguments: isTool || request.method === 'prompts/get' ? objectOr(params.arguments) : (none as Record<string, unknown>),
    resource: { uri: request.method.startsWith('resources/') ? stringOr(params.uri) : '' },
    prompt: { name: promptName },
    virtual:
      through === undefined
        ? noVirtualServer
        : {
            server: through.server,
            tool: toolName === '' ? '' : through.exposed('tool', toolName),
            prompt: promptName === '' ? '' : through.exposed('prompt', promptName),
          },
    params,
    inputResponses,
  };
}

/** The tool, prompt or resource a request is about, for reviews and messages; undefined for protocol housekeeping. */
export function targetOf(facts: RequestFacts): string | undefined {
  return facts.tool.name || facts.prompt.name || facts.resource.uri || undefined;
}
