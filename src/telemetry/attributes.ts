import type { Attributes } from '@opentelemetry/api';
import type { JsonRpcRequest, JsonRpcResponse } from '../protocol/jsonrpc.js';
import type { Verdict } from '../pipeline/stage.js';

/** The attribute naming what a request is about, and the param it is in. */
const targets: Readonly<Record<string, readonly [string, string]>> = {
  'tools/call': ['mcp.tool', 'name'],
  'prompts/get': ['mcp.prompt', 'name'],
  'resources/read': ['mcp.resource', 'uri'],
  'resources/subscribe': ['mcp.resource', 'uri'],
  'resources/unsubscribe': ['mcp.resource', 'uri'],
};

/** What a request is about, as span attributes: its method and the tool, prompt or resource it names (never its arguments). */
export function requestAttributes(request: JsonRpcRequest, attributes: Attributes): string {
  const method = request.method;
  attributes['mcp.method'] = method;
  const key = Object.hasOwn(targets, method) ? targets[method] : undefined;
  const target = key === undefined ? undefined : request.params?.[key[1]];
  if (key === undefined || typeof target !== 'string') return method;
  attributes[key[0]] = target;
  return `${method} ${target.slice(0, 200)}`;
}

/** The span names of the stages, as the traces show them. */
const stageSpans: Readonly<Record<string, string>> = { 'tool-pins': 'pins' };

export function stageSpanName(stage: string): string {
  return stageSpans[stage] ?? stage;
}

/** What a stage's verdict says, as attributes: the action, the deciding rule, masking's counts. Never a value it saw. */
export function verdictAttributes(stage: string, verdict: Verdict | undefined): Attributes {
  const attributes: Attributes = { 'portcullis.stage': stage, 'portcullis.stage.action': verdict?.action ?? 'pass' };
  const details = verdict !== undefined && verdict.action !== 'hold' ? verdict.details : undefined;
  if (details === undefined) return attributes;
  if (typeof details.rule === 'string') attributes['portcullis.rule'] = details.rule;
  if (typeof details.action === 'string') attributes['portcullis.decision'] = details.action;
  if (typeof details.review === 'string') attributes['portcullis.review.id'] = details.review;
  if (typeof details.status === 'string') attributes['portcullis.review.status'] = details.status;
  if (Array.isArray(details.redactions)) {
    let count = 0;
    const detectors = new Set<string>();
    for (const r of details.redactions as { detector?: unknown; count?: unknown }[]) {
      if (typeof r?.count === 'number') count += r.count;
      if (typeof r?.detector === 'string') detectors.add(r.detector);
    }
    attributes['portcullis.mask.redactions'] = count;
    attributes['portcullis.mask.detectors'] = [...detectors];
  }
  if (details.withheld !== undefined) attributes['portcullis.mask.withheld'] = true;
  if (typeof details.quarantined === 'boolean') attributes['portcullis.pins.quarantined'] = details.quarantined;
  return attributes;
}

/** How the exchange ended for its client, as attributes; `ended` when no response was delivered. */
export function outcomeAttributes(response: JsonRpcResponse | undefined, ended: string | undefined): Attributes {
  if (response === undefined) return { 'portcullis.outcome': 'cancelled', 'portcullis.ended': ended ?? 'no response' };
  if (response.error !== undefined) return { 'portcullis.outcome': 'error', 'rpc.jsonrpc.error_code': response.error.code };
  return { 'portcullis.outcome': 'result' };
}
