import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { AgentStatus } from '../agent/hub.js';
import type { AuditSinkStatus } from '../audit/shipper.js';
import type { Direction } from '../core/direction.js';
import type { VerdictEvent } from '../core/verdict-event.js';
import type { Session, SessionObserver } from '../session/session.js';

/**
 * What the gateway exports at /metrics, in Prometheus' text format: sessions and messages per connection, what the
 * stages did, and each agent's tunnel (connected, version, sessions, last heartbeat, traffic). Counters move with
 * the sessions (it is a session observer); gauges are read when scraped. Its own registry, not prom-client's
 * global one, so several gateways in one process (the tests) keep their figures apart.
 */

export interface MetricsSources {
  /** The sessions open now. */
  sessions: () => Iterable<Pick<Session, 'connection'>>;
  /** Each agent's status; absent when no connection is served by an agent. */
  agents?: () => AgentStatus[];
  /** Each audit sink's status; absent when no audit sink is configured. */
  audit?: () => AuditSinkStatus[];
  version: string;
}

export class GatewayMetrics implements SessionObserver {
  readonly registry = new Registry();
  readonly #opened: Counter<'connection'>;
  readonly #closed: Counter<'connection'>;
  readonly #messages: Counter<'connection' | 'direction'>;
  readonly #verdicts: Counter<'connection' | 'stage' | 'action'>;
  readonly #refusals: Counter<'limit'>;

  constructor(sources: MetricsSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    new Gauge({ name: 'portcullis_build_info', help: 'The running version (always 1)', labelNames: ['version'], registers }).set(
      { version: sources.version },
      1,
    );
    new Gauge({
      name: 'portcullis_sessions_open',
      help: 'Sessions open now, per connection',
      labelNames: ['connection'],
      registers,
      collect() {
        this.reset();
        const counts = new Map<string, number>();
        for (const s of sources.sessions()) counts.set(s.connection, (counts.get(s.connection) ?? 0) + 1);
        for (const [connection, n] of counts) this.set({ connection }, n);
      },
    });
    this.#opened = new Counter({ name: 'portcullis_sessions_opened_total', help: 'Sessions opened, per connection', labelNames: ['connection'], registers });
    this.#closed = new Counter({ name: 'portcullis_sessions_closed_total', help: 'Sessions ended, per connection', labelNames: ['connection'], registers });
    this.#messages = new Counter({
      name: 'portcullis_messages_total',
      help: 'JSON-RPC messages received, per connection and direction (toServer: from clients; toClient: from servers)',
      labelNames: ['connection', 'direction'],
      registers,
    });
    this.#verdicts = new Counter({
      name: 'portcullis_verdicts_total',
      help: 'What pipeline stages did to messages (rewrite: masked; answer: refused or answered by the gateway; hold: held for review)',
      labelNames: ['connection', 'stage', 'action'],
      registers,
    });
    this.#refusals = new Counter({
      name: 'portcullis_limit_refusals_total',
      help: 'Sessions and requests refused by a limit (HTTP 429 or JSON-RPC -31029), per limit (its config key)',
      labelNames: ['limit'],
      registers,
    });
    if (sources.agents !== undefined) this.#agentMetrics(sources.agents, registers);
    if (sources.audit !== undefined) this.#auditMetrics(sources.audit, registers);
  }

  /** Per audit sink: what waits for it, when it last took a batch, how often it failed (docs/operations.md, what to alert on). */
  #auditMetrics(sinks: () => AuditSinkStatus[], registers: Registry[]): void {
    new Gauge({
      name: 'portcullis_audit_backlog_events',
      help: "Recorded events not yet taken by the audit sink (this replica's share; an estimate between the sink's scans)",
      labelNames: ['sink'],
      registers,
      collect() {
        this.reset();
        for (const s of sinks()) this.set({ sink: s.name }, s.backlog);
      },
    });
    new Gauge({
      name: 'portcullis_audit_last_shipped_timestamp_seconds',
      help: 'When the audit sink last took a batch (Unix time; absent until it has)',
      labelNames: ['sink'],
      registers,
      collect() {
        this.reset();
        for (const s of sinks()) if (s.lastShippedAtMs !== undefined) this.set({ sink: s.name }, s.lastShippedAtMs / 1000);
      },
    });
    const seen = new Map<string, number>();
    new Counter({
      name: 'portcullis_audit_failures_total',
      help: 'Failed attempts to ship to the audit sink (each is retried: nothing is dropped)',
      labelNames: ['sink'],
      registers,
      collect() {
        for (const s of sinks()) {
          const delta = s.failures - (seen.get(s.name) ?? 0);
          this.inc({ sink: s.name }, Math.max(0, delta));
          seen.set(s.name, s.failures);
        }
      },
    });
  }

  #agentMetrics(agents: () => AgentStatus[], registers: Registry[]): void {
    /** A gauge over every agent, read from its status when scraped. */
    const perAgent = (
      name: string,
      help: string,
      value: (a: AgentStatus) => number | undefined,
      extraLabel?: { name: string; of: (a: AgentStatus) => string | null },
    ) =>
      new Gauge({
        name,
        help,
        labelNames: extraLabel ? ['agent', extraLabel.name] : ['agent'],
        registers,
        collect() {
          this.reset();
          for (const a of agents()) {
            const v = value(a);
            if (v === undefined) continue;
            if (extraLabel === undefined) this.set({ agent: a.name }, v);
            else this.set({ agent: a.name, [extraLabel.name]: extraLabel.of(a) ?? 'unknown' }, v);
          }
        },
      });
    perAgent('portcullis_agent_connected', 'Whether the agent has a tunnel to this gateway (1) or not (0)', (a) => (a.connected ? 1 : 0));
    perAgent('portcullis_agent_info', "The connected agent's version (always 1)", (a) => (a.connected ? 1 : undefined), {
      name: 'version',
      of: (a) => a.version,
    });
    perAgent('portcullis_agent_sessions', "Sessions open over the agent's tunnel", (a) => a.sessions);
    perAgent('portcullis_agent_connections', 'Connections the connected agent says it serves', (a) => (a.connected ? a.connections.length : undefined));
    perAgent('portcullis_agent_last_heartbeat_timestamp_seconds', 'When the agent last answered a heartbeat (Unix time)', (a) =>
      a.lastHeartbeat === null ? undefined : Date.parse(a.lastHeartbeat) / 1000,
    );
    // Totals the hub keeps since the gateway started, exported as counters: each scrape adds what grew since the last.
    const seen = new Map<string, number>();
    const grow = (counter: Counter<string>, labels: Record<string, string>, total: number) => {
      const key = JSON.stringify(labels);
      const delta = total - (seen.get(key) ?? 0);
      if (delta > 0) counter.inc(labels, delta);
      else if (!seen.has(key)) counter.inc(labels, 0);
      seen.set(key, total);
    };
    new Counter({
      name: 'portcullis_agent_tunnels_opened_total',
      help: 'Tunnels the agent has opened to this gateway (reconnects show here)',
      labelNames: ['agent'],
      registers,
      collect() {
        for (const a of agents()) grow(this, { agent: a.name }, a.tunnels);
      },
    });
    new Counter({
      name: 'portcullis_agent_tunnel_bytes_total',
      help: "Bytes over the agent's tunnels (in: from the agent, out: to it)",
      labelNames: ['agent', 'direction'],
      registers,
      collect() {
        for (const a of agents()) {
          grow(this, { agent: a.name, direction: 'in' }, a.bytesIn);
          grow(this, { agent: a.name, direction: 'out' }, a.bytesOut);
        }
      },
    });
  }

  opened(session: Session): void {
    this.#opened.inc({ connection: session.connection });
  }

  closed(session: Session): void {
    this.#closed.inc({ connection: session.connection });
  }

  message(session: Session, direction: Direction, boundary: 'received' | 'delivered'): void {
    if (boundary === 'received') this.#messages.inc({ connection: session.connection, direction });
  }

  verdict(session: Session, event: VerdictEvent): void {
    this.#verdicts.inc({ connection: session.connection, stage: event.stage, action: event.action });
  }

  /** A limit refused a session, a request, or an unauthenticated attempt. */
  limitRefused(limit: string): void {
    this.#refusals.inc({ limit });
  }

  /** The exposition text, and its content type. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
