import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { z } from 'zod';
import { duration, httpUrl, secretMap } from '../../core/config-fields.js';
import type { SecretSources, SecretString } from '../../core/secrets.js';
import { jsonLine } from '../formats/json.js';
import type { AuditRecord, AuditSink, SinkContext, SinkKind } from '../sink.js';

/**
 * `http:`: batches of JSON lines POSTed to a URL, one record per line. Splunk's HEC raw endpoint
 * (/services/collector/raw, `Authorization: Splunk <token>`) takes it as it is, as do Vector's and Fluent Bit's HTTP
 * inputs, Logstash's http input with the json_lines codec, and Elastic's or Datadog's intake behind one of them.
 * A batch is taken when the collector answers 2xx; any other answer (a redirect too), a network error or no answer
 * within `timeout` rejects it, and the shipper sends it again later. With Splunk's indexer acknowledgement on, give
 * the channel as a header (`X-Splunk-Request-Channel`); a 2xx then means received, which is as far as HEC tells.
 */
function schema(sources: SecretSources) {
  return z
    .strictObject({
      /** Where to POST; may hold references (a token in the query). */
      url: httpUrl(sources),
      /** Request headers; a credential (Authorization, a token) must be a reference such as `Splunk ${env:HEC_TOKEN}`. */
      headers: secretMap(sources, 'header'),
      /** Records per request at most. */
      batch: z.number().int().min(1).max(10_000).default(500),
      /** How long a request may take before it counts as failed (and is retried). */
      timeout: duration('30s').refine((ms) => ms >= 100 && ms <= 600_000, 'expected a duration from 100ms to 10m'),
    })
    .transform(({ timeout, ...rest }) => ({ ...rest, timeoutMs: timeout }));
}

export type HttpSinkConfig = z.output<ReturnType<typeof schema>>;

/** How much of a refusing collector's answer goes into the error (and the log): enough to see why. */
const answerExcerpt = 300;

class HttpSink implements AuditSink {
  readonly name: string;
  readonly maxBatch: number;
  readonly #url: SecretString;
  readonly #headers: Record<string, SecretString>;
  readonly #timeoutMs: number;
  // node:http with a keep-alive agent rather than fetch: a batch costs one write of a Buffer, not a web stream.
  readonly #agents = { http: new HttpAgent({ keepAlive: true, maxSockets: 1 }), https: new HttpsAgent({ keepAlive: true, maxSockets: 1 }) };

  constructor(config: HttpSinkConfig, ctx: SinkContext) {
    this.name = ctx.name;
    this.maxBatch = config.batch;
    this.#url = config.url;
    this.#headers = config.headers;
    this.#timeoutMs = config.timeoutMs;
  }

  async send(batch: readonly AuditRecord[]): Promise<void> {
    if (batch.length === 0) return;
    let text = '';
    for (const record of batch) text += `${jsonLine(record)}\n`;
    const body = Buffer.from(text);
    const headers: Record<string, string> = { 'content-type': 'application/x-ndjson', 'content-length': String(body.length) };
    for (const [name, value] of Object.entries(this.#headers)) headers[name.toLowerCase()] = value.reveal();
    const url = new URL(this.#url.reveal());
    // The URL as configured (references unresolved) names it in errors: a token in its query stays out of them.
    const where = `POST ${this.#url.template}`;
    const { status, answer } = await new Promise<{ status: number; answer: string }>((resolve, reject) => {
      const secure = url.protocol === 'https:';
      const req = (secure ? httpsRequest : httpRequest)(
        url,
        { method: 'POST', headers, agent: secure ? this.#agents.https : this.#agents.http, timeout: this.#timeoutMs },
        (res) => {
          let answer = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => {
            if (answer.length < answerExcerpt + 1) answer += d;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, answer }));
          res.on('error', (err) => reject(new Error(`${where} failed: ${err.message}`)));
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.#timeoutMs} ms`)));
      req.on('error', (err) => reject(new Error(`${where} failed: ${err.message}`)));
      req.end(body);
    });
    if (status < 200 || status > 299) {
      const excerpt = answer.length > answerExcerpt ? `${answer.slice(0, answerExcerpt)}…` : answer;
      throw new Error(`${where} answered ${status}${excerpt ? `: ${excerpt.replace(/\s+/g, ' ').trim()}` : ''}`);
    }
  }

  async close(): Promise<void> {
    this.#agents.http.destroy();
    this.#agents.https.destroy();
  }
}

export const httpSinkKind: SinkKind<HttpSinkConfig> = {
  key: 'http',
  schema,
  create: (config, ctx) => new HttpSink(config, ctx),
};
