import { createHmac, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { type ReviewView, reviewView } from './view.js';
import type { MaskingConfig } from '../masking/config.js';
import type { RuleConfig } from '../policy/config.js';
import type { NotifierConfig, ReviewEvent, WebhookConfig } from './config.js';
import { type Masker, MaskingRefusedError } from '../masking/engine.js';
import { maskerFor } from '../masking/policy.js';
import type { ReviewRow } from '../store/review-types.js';

/**
 * Review notifications: every new review and every decision on one is POSTed to the webhooks of the review's rule
 * (or `reviews.notify`), as generic JSON or as Slack's `{text, blocks}`, with a link to the review in the console.
 * The call's params go through the connection's masking whatever `recordArguments` says, because a webhook is a
 * way out of the gateway. Deliveries are signed (HMAC-SHA256 over timestamp and body) when the webhook has a
 * secret, retried with backoff on network errors, 5xx and 429, and never followed through a redirect. A review
 * never waits for, or fails with, its notifications.
 */

export interface DeliveryTimings {
  /** Attempts per delivery, the first included. */
  attempts: number;
  /** The wait before the first retry; doubled for each further one, with jitter. */
  backoffMs: number;
  /** The longest Retry-After honoured. */
  maxRetryAfterMs: number;
  attemptTimeoutMs: number;
  /** How long stop() lets attempts under way finish (a shutdown's `interrupted` notifications among them). */
  stopGraceMs: number;
}

const defaultTimings: DeliveryTimings = { attempts: 5, backoffMs: 1000, maxRetryAfterMs: 60_000, attemptTimeoutMs: 10_000, stopGraceMs: 2000 };

export interface ReviewNotifierOptions {
  webhooks: readonly WebhookConfig[];
  /** The rules, for their own `notify` lists. */
  rules: ReadonlyArray<Pick<RuleConfig, 'name' | 'notify'>>;
  /** The webhooks of reviews whose rule names none of its own (`reviews.notify`). */
  notify: readonly string[];
  /** The masking of a connection, which a notification's params go through. */
  masking: (connection: string) => MaskingConfig;
  /** The gateway's base URL as people reach it; undefined while not known (no link is sent then). */
  baseUrl: () => string | undefined;
  log: Logger;
  timings?: Partial<DeliveryTimings>;
}

/** A review as a notification shows it: no session id or digest, the requester without issuer. */
export type ReviewNotice = Omit<ReviewView, 'session' | 'digest' | 'requester'> & { requester: { subject: string; email: string | null } };

interface Delivery {
  webhook: WebhookConfig;
  event: ReviewEvent;
  review: string;
  body: string;
  /** The same on every attempt, so a receiver can drop a repeat. */
  id: string;
}

type Attempt = { ok: true } | { ok: false; retry: boolean; problem: string; retryAfterMs?: number };

/** The review with its call masked: a masker that refuses the params (nested too deep) withholds them. */
export function noticeOf(row: ReviewRow, masker: Masker): ReviewNotice {
  const { session: _session, digest: _digest, ...view } = reviewView(row);
  let params: unknown;
  try {
    // Where the params are in a request, so that JSON-path rules anchored at the message (`$.params.…`) apply.
    params = masker.maskValue(view.params, ['params']).value;
  } catch (err) {
    if (!(err instanceof MaskingRefusedError)) throw err;
    params = { withheld: `the params could not be masked (${err.message}), so they are not sent` };
  }
  const masked = (text: string | null) => (text === null ? null : (masker.maskString(text)?.text ?? text));
  const target = masked(row.target);
  const virtual = view.virtual === null ? null : { server: view.virtual.server, target: masked(view.virtual.target) };
  return { ...view, requester: { subject: row.requesterSubject, email: row.requesterEmail }, target, virtual, params };
}

/** Slack's mrkdwn gives &, < and > meaning; a value must not become a link or a mention. */
const slackEscape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const clip = (text: string, max: number) => (text.length <= max ? text : `${text.slice(0, max - 1)}…`);

/** A Slack incoming-webhook payload: a one-line `text` (notifications, fallbacks) and blocks with the details and a link. */
export function slackPayload(event: ReviewEvent, r: ReviewNotice, approveUrl: string | null): { text: string; blocks: unknown[] } {
  const through = r.virtual === null ? '' : ` (through ${r.virtual.server}${r.virtual.target === null ? '' : ` as ${r.virtual.target}`})`;
  const call = `${r.method}${r.target === null ? '' : ` ${r.target}`}${through}`;
  const requester = r.requester.email ?? r.requester.subject;
  const decider = r.decider === null ? '' : ` by ${r.decider.email ?? r.decider.subject}`;
  const text =
    event === 'review.created'
      ? `Review needed: ${call} on ${r.connection} by ${requester} (rule ${r.rule}), ${r.approvalsNeeded === 1 ? 'an approval' : `${r.approvalsNeeded} approvals`} from ${r.approvers.join(', ')}`
      : `Review ${r.status}${decider}: ${call} on ${r.connection} by ${requester} (rule ${r.rule})${r.note === null ? '' : `: ${r.note}`}`;
  // Slack reads `text` as mrkdwn too, and limits a section's text to 3000 characters.
  const summary = clip(slackEscape(text), 3000);
  const field = (name: string, value: string) => ({ type: 'mrkdwn', text: `*${name}*\n${clip(slackEscape(value), 500)}` });
  const params = clip(slackEscape(JSON.stringify(r.params, null, 2)).replace(/```/g, '` ` `'), 2990);
  return {
    text: summary,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: summary } },
      {
        type: 'section',
        fields: [
          field('Review', `${r.id} (${r.status})`),
          field('Rule', r.rule),
          field('Connection', r.connection),
          field('Requester', requester),
          field('Approvers', `${r.approvers.join(', ')} (${r.approvals.length}/${r.approvalsNeeded})`),
          r.decidedAt === null ? field('Expires', r.expiresAt) : field('Decided', r.decidedAt),
        ],
      },
      { type: 'section', text: { type: 'mrkdwn', text: `\`\`\`${params}\`\`\`` } },
      ...(approveUrl === null
        ? []
        : [{ type: 'actions', elements: [{ type: 'button', text: { type: 'plain_text', text: 'Open in Portcullis' }, url: approveUrl }] }]),
    ],
  };
}

/** Retry-After in seconds or as an HTTP date, in ms; undefined when absent or unreadable. */
function retryAfterMs(header: string | null): number | undefined {
  if (header === null) return undefined;
  const ms = /^\d+$/.test(header.trim()) ? Number(header.trim()) * 1000 : Date.parse(header) - Date.now();
  return Number.isNaN(ms) ? undefined : Math.max(0, ms);
}

/** Why a request failed, without its URL (which may carry a credential). */
function networkProblem(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; cause?: { code?: string } };
  if (e.name === 'TimeoutError') return `no answer within ${timeoutMs}ms`;
  return e.cause?.code ?? e.name ?? 'network error';
}

export class ReviewNotifier {
  readonly #webhooks: Map<string, WebhookConfig>;
  /** Rule → its own webhooks. */
  readonly #routes: Map<string, readonly string[]>;
  readonly #maskers = new Map<string, Masker>();
  readonly #timings: DeliveryTimings;
  readonly #inFlight = new Set<Promise<void>>();
  /** Aborted by stop(): no more waiting for a retry. */
  readonly #retries = new AbortController();
  /** Aborted by stop() after its grace: attempts under way end. */
  readonly #requests = new AbortController();
  #stopping = false;
  #baseUrl: string | undefined;

  constructor(private readonly o: ReviewNotifierOptions) {
    this.#webhooks = new Map(o.webhooks.map((w) => [w.name, w]));
    this.#routes = new Map(o.rules.flatMap((r) => (r.notify === undefined ? [] : [[r.name, r.notify] as const])));
    this.#timings = { ...defaultTimings, ...o.timings };
  }

  /** The notifier a gateway's config describes; a review held by a connection not configured here gets the gateway-wide masking. */
  static fromConfig(config: NotifierConfig, baseUrl: () => string | undefined, log: Logger, timings?: Partial<DeliveryTimings>): ReviewNotifier {
    return new ReviewNotifier({
      webhooks: config.notifications.webhooks,
      rules: config.rules,
      notify: config.reviews.notify,
      masking: (connection) => config.connections.get(connection)?.masking ?? config.masking,
      baseUrl,
      log,
      ...(timings ? { timings } : {}),
    });
  }

  /** Sends the event to the review's webhooks in the background; never throws. */
  notify(event: ReviewEvent, row: ReviewRow): void {
    if (this.#stopping) return;
    try {
      const webhooks = (this.#routes.get(row.rule) ?? this.o.notify).flatMap((name) => this.#webhooks.get(name) ?? []).filter((w) => w.events.includes(event));
      if (webhooks.length === 0) return;
      const review = noticeOf(row, this.#maskerFor(row.connection));
      // Kept once known: a listen address is not known before the gateway listens, nor after it stops listening.
      const base = (this.#baseUrl ??= this.o.baseUrl());
      const approveUrl = base === undefined ? null : `${base}/reviews/${encodeURIComponent(row.id)}`;
      const bodies = { json: JSON.stringify({ event, review, approveUrl }), slack: JSON.stringify(slackPayload(event, review, approveUrl)) };
      for (const webhook of webhooks) this.#track(this.#deliver({ webhook, event, review: row.id, body: bodies[webhook.format], id: randomUUID() }));
    } catch (err) {
      this.o.log.error({ err: (err as Error).message, review: row.id, event }, 'a review notification could not be prepared');
    }
  }

  /** No more retries; attempts under way get stopGraceMs to finish. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#retries.abort();
    const settled = Promise.allSettled(this.#inFlight);
    await Promise.race([settled, sleep(this.#timings.stopGraceMs, undefined, { ref: false })]);
    this.#requests.abort();
    await settled;
  }

  #maskerFor(connection: string): Masker {
    let masker = this.#maskers.get(connection);
    // Enabled whatever the connection says: nothing a detector recognises leaves through a notification.
    if (masker === undefined) this.#maskers.set(connection, (masker = maskerFor({ ...this.o.masking(connection), enabled: true })));
    return masker;
  }

  #track(delivery: Promise<void>): void {
    const tracked: Promise<void> = delivery
      .catch((err: Error) => this.o.log.error({ err: err.message }, 'review notification failed'))
      .finally(() => this.#inFlight.delete(tracked));
    this.#inFlight.add(tracked);
  }

  async #deliver(d: Delivery): Promise<void> {
    // The webhook's origin only: a path or query may hold a credential (a Slack webhook URL does).
    const where = { webhook: d.webhook.name, to: new URL(d.webhook.url.reveal()).origin, event: d.event, review: d.review, delivery: d.id };
    for (let attempt = 1; ; attempt++) {
      const result = await this.#attempt(d);
      if (result.ok) {
        this.o.log.debug({ ...where, attempt }, 'review notification delivered');
        return;
      }
      const last = !result.retry || attempt >= this.#timings.attempts || this.#stopping;
      this.o.log.warn(
        { ...where, attempt, problem: result.problem },
        last ? 'review notification not delivered; giving up' : 'review notification failed; will retry',
      );
      if (last) return;
      const backoff = this.#timings.backoffMs * 2 ** (attempt - 1) * (0.5 + Math.random() / 2);
      try {
        await sleep(result.retryAfterMs === undefined ? backoff : Math.min(result.retryAfterMs, this.#timings.maxRetryAfterMs), undefined, {
          signal: this.#retries.signal,
        });
      } catch {
        this.o.log.warn(where, 'review notification abandoned: the gateway is stopping');
        return;
      }
    }
  }

  async #attempt(d: Delivery): Promise<Attempt> {
    const timestamp = String(Math.floor(Date.now() / 1000));
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'portcullis-webhook',
      'x-portcullis-event': d.event,
      'x-portcullis-delivery': d.id,
      'x-portcullis-timestamp': timestamp,
    };
    if (d.webhook.secret !== undefined)
      headers['x-portcullis-signature'] = `sha256=${createHmac('sha256', d.webhook.secret.reveal()).update(`${timestamp}.${d.body}`).digest('hex')}`;
    let res: Response;
    try {
      res = await fetch(d.webhook.url.reveal(), {
        method: 'POST',
        headers,
        body: d.body,
        // A redirect could point the gateway anywhere; it is a failure, not a hop.
        redirect: 'manual',
        signal: AbortSignal.any([this.#requests.signal, AbortSignal.timeout(this.#timings.attemptTimeoutMs)]),
      });
    } catch (err) {
      if (this.#requests.signal.aborted) return { ok: false, retry: false, problem: 'the gateway stopped' };
      return { ok: false, retry: true, problem: networkProblem(err, this.#timings.attemptTimeoutMs) };
    }
    await res.body?.cancel().catch(() => {});
    if (res.status >= 200 && res.status < 300) return { ok: true };
    if (res.status >= 300 && res.status < 400) return { ok: false, retry: false, problem: `HTTP ${res.status}: a redirect, which is never followed` };
    if (res.status < 500 && res.status !== 429) return { ok: false, retry: false, problem: `HTTP ${res.status}` };
    const wait = retryAfterMs(res.headers.get('retry-after'));
    return { ok: false, retry: true, problem: `HTTP ${res.status}`, ...(wait === undefined ? {} : { retryAfterMs: wait }) };
  }
}
