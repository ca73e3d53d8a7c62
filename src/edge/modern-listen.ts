import { logRefusal } from '../core/refusal-log.js';
import { untrustedPrefix } from '../core/untrusted-text.js';
import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { JsonRpcNotification, JsonRpcRequest } from '../protocol/jsonrpc.js';
import type { PooledSession } from '../session/modern-pool.js';
import { type KeepAlive, sseFrame, sseHeaders } from './sse-writer.js';

/** The resources one listen stream may follow. */
export const maxFollowed = 100;

const subscriptionIdKey = 'io.modelcontextprotocol/subscriptionId';

/** Which filter field lets each change notification through (basic/patterns/subscriptions.mdx). */
const listChanged: Readonly<Record<string, { field: string; capability: string }>> = {
  'notifications/tools/list_changed': { field: 'toolsListChanged', capability: 'tools' },
  'notifications/prompts/list_changed': { field: 'promptsListChanged', capability: 'prompts' },
  'notifications/resources/list_changed': { field: 'resourcesListChanged', capability: 'resources' },
};

/** Per pooled session, how many listen streams follow each URI: the upstream is unsubscribed when the last one ends. */
const following = new WeakMap<PooledSession, Map<string, number>>();

function object(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

/**
 * `subscriptions/listen` for a modern client, built from a 2025-era upstream's list_changed and `resources/updated`
 * notifications on the caller's pooled session. Resource subscriptions are made with `resources/subscribe` through the
 * session's pipeline, so access rules decide which URIs the caller may follow; notifications pass the pipeline as any
 * server message does. The stream is SSE: the acknowledgment first, then what the filter asked for, each stamped with
 * the subscription id; it ends when the client closes it, or with a completion result when the session ends.
 */
export async function serveListen(res: ServerResponse, pooled: PooledSession, request: JsonRpcRequest, keepAlive: KeepAlive, log: Logger): Promise<void> {
  const filter = object(request.params?.notifications);
  const capabilities = pooled.facts.capabilities;
  const agreed: Record<string, unknown> = {};
  for (const { field, capability } of Object.values(listChanged)) {
    if (filter[field] === true && object(capabilities[capability]).listChanged === true) agreed[field] = true;
  }
  // Each URI is one upstream request: a stream follows at most maxFollowed (the honored filter says which).
  const wanted = Array.isArray(filter.resourceSubscriptions)
    ? filter.resourceSubscriptions.filter((u): u is string => typeof u === 'string').slice(0, maxFollowed)
    : [];
  const followed: string[] = [];
  const counts = following.get(pooled) ?? following.set(pooled, new Map()).get(pooled)!;
  if (wanted.length > 0 && object(capabilities.resources).subscribe === true) {
    for (const uri of new Set(wanted)) {
      // Through the pipeline each time, even when already followed: access is decided for this caller now.
      const answer = await pooled.call('resources/subscribe', { uri });
      if (answer.error !== undefined) {
        const refusal = {
          principal: pooled.session.identity.subject,
          connection: pooled.session.connection,
          method: 'resources/subscribe',
          reason: answer.error.message,
        };
        logRefusal(log, refusal, 'resource subscription refused', { uri: untrustedPrefix(uri) });
        continue;
      }
      followed.push(uri);
      counts.set(uri, (counts.get(uri) ?? 0) + 1);
    }
  }
  const unfollow = () => {
    for (const uri of followed) {
      const left = (counts.get(uri) ?? 1) - 1;
      if (left > 0) counts.set(uri, left);
      else {
        counts.delete(uri);
        if (pooled.isOpen) void pooled.call('resources/unsubscribe', { uri });
      }
    }
  };
  // The client left while its subscriptions were made: its 'close' has come and gone, so nothing would ever end this
  // stream (the listener would keep the pooled session, and its upstream, from being reaped). Undone now.
  if (res.destroyed) return unfollow();
  if (followed.length > 0) agreed.resourceSubscriptions = followed;
  const stamp = (params: Record<string, unknown> | undefined) => ({
    ...params,
    _meta: { ...object(params?._meta), [subscriptionIdKey]: request.id },
  });
  res.writeHead(200, sseHeaders);
  res.write(sseFrame(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/subscriptions/acknowledged', params: stamp({ notifications: agreed }) })));
  keepAlive.add(res);
  let ended = false;
  const stop = pooled.listen({
    notification(message: JsonRpcNotification) {
      if (ended) return;
      const changed = listChanged[message.method];
      const wantedHere =
        changed !== undefined
          ? agreed[changed.field] === true
          : message.method === 'notifications/resources/updated' && followed.includes(String(message.params?.uri));
      if (wantedHere) res.write(sseFrame(JSON.stringify({ jsonrpc: '2.0', method: message.method, params: stamp(message.params) })));
    },
    closed() {
      if (ended) return;
      ended = true;
      keepAlive.delete(res);
      res.end(sseFrame(JSON.stringify({ jsonrpc: '2.0', id: request.id, result: { resultType: 'complete', _meta: { [subscriptionIdKey]: request.id } } })));
    },
  });
  res.on('close', () => {
    if (ended) return;
    ended = true;
    keepAlive.delete(res);
    stop();
    unfollow();
  });
}
